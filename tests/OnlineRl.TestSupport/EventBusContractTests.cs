using System.Collections.Concurrent;
using System.Text;
using OnlineRl.Messaging;
using Xunit;

namespace OnlineRl.TestSupport;

/// <summary>
/// The promises of <see cref="IEventBus"/> as tests: a transport's test class derives from this and says how
/// to make a bus. Every test makes its own bus, whose topics no other bus sees.
/// </summary>
public abstract class EventBusContractTests
{
    /// <summary>
    /// A new, empty bus. Call <c>Skip.If</c> inside when the transport's server cannot run here.
    /// </summary>
    /// <param name="defaultCapacity">How many unfinished messages a topic holds before publishers wait.</param>
    /// <param name="topicCapacities">Capacities of particular topics.</param>
    protected abstract IEventBus CreateBus(int defaultCapacity = 10_000, IReadOnlyDictionary<string, int>? topicCapacities = null);

    /// <summary>How long an operation must stay incomplete to count as blocked.</summary>
    protected virtual TimeSpan BlockedFor => TimeSpan.FromMilliseconds(300);

    /// <summary>The payload "m{i}".</summary>
    public static byte[] Bytes(int i) => Encoding.UTF8.GetBytes($"m{i}");

    /// <summary>The text of a payload written by <see cref="Bytes"/>.</summary>
    protected static string Text(BusMessage m) => Encoding.UTF8.GetString(m.Payload.Span);

    /// <summary>Publishes m{start}..m{start+count-1} with keys k{i}.</summary>
    public static async Task PublishMany(IEventBus bus, string topic, int count, int start = 0)
    {
        for (var i = start; i < start + count; i++)
            await bus.PublishAsync(topic, $"k{i}", Bytes(i)).Guarded();
    }

    /// <summary>Receives and acknowledges <paramref name="count"/> messages.</summary>
    public static async Task<List<BusMessage>> ReceiveAndAck(IEventSubscription sub, int count)
    {
        var got = new List<BusMessage>();
        for (var i = 0; i < count; i++)
        {
            var m = await sub.ReceiveAsync().Guarded();
            got.Add(m);
            await sub.AckAsync(m).Guarded();
        }
        return got;
    }

    /// <summary>Fails unless <paramref name="task"/> is still incomplete after <see cref="BlockedFor"/>.</summary>
    protected async Task AssertBlocked(Task task, string what)
    {
        await Task.WhenAny(task, Task.Delay(BlockedFor));
        Assert.False(task.IsCompleted, $"{what} should still be waiting");
    }

    [SkippableFact]
    public async Task Message_carries_topic_key_payload_headers_id_and_delivery_count()
    {
        await using var bus = CreateBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        var headers = new Dictionary<string, string> { ["run-id"] = "r1", ["schema-version"] = "1" };
        var payload = new byte[] { 1, 2, 3, 0, 255 };
        var id = await bus.PublishAsync("t", "key-1", payload, headers).Guarded();
        payload[0] = 99; // the bus copied it (or sent it) before returning
        headers["run-id"] = "changed";
        var m = await sub.ReceiveAsync().Guarded();
        Assert.Equal("t", m.Topic);
        Assert.Equal("key-1", m.Key);
        Assert.Equal([1, 2, 3, 0, 255], m.Payload.ToArray());
        Assert.Equal("r1", m.Headers["run-id"]);
        Assert.Equal("1", m.Headers["schema-version"]);
        Assert.Equal(2, m.Headers.Count);
        Assert.Equal(id, m.Id);
        Assert.Equal(1, m.DeliveryCount);
        Assert.InRange(m.Timestamp, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Equal(("t", "g", "c"), (sub.Topic, sub.GroupId, sub.ConsumerId));

        await bus.PublishAsync("t", "", ReadOnlyMemory<byte>.Empty).Guarded();
        var empty = await sub.ReceiveAsync().Guarded();
        Assert.Equal(("", 0, 0), (empty.Key, empty.Payload.Length, empty.Headers.Count));
    }

    [SkippableFact]
    public async Task Every_group_receives_every_message_in_publish_order()
    {
        await using var bus = CreateBus();
        await using var a = bus.Subscribe("t", "group-a", "a0");
        await using var b = bus.Subscribe("t", "group-b", "b0");
        await PublishMany(bus, "t", 50);
        var gotA = await ReceiveAndAck(a, 50);
        var gotB = await ReceiveAndAck(b, 50);
        var expected = Enumerable.Range(0, 50).Select(i => $"m{i}").ToList();
        Assert.Equal(expected, gotA.Select(Text).ToList());
        Assert.Equal(expected, gotB.Select(Text).ToList());
        Assert.Equal(gotA.Select(m => m.Id), gotB.Select(m => m.Id));
    }

    [SkippableFact]
    public async Task Consumers_of_one_group_get_different_messages()
    {
        await using var bus = CreateBus();
        await using var c1 = bus.Subscribe("t", "g", "c1");
        await using var c2 = bus.Subscribe("t", "g", "c2");
        await PublishMany(bus, "t", 4);
        var m0 = await c1.ReceiveAsync().Guarded();
        var m1 = await c2.ReceiveAsync().Guarded();
        var m2 = await c2.ReceiveAsync().Guarded();
        var m3 = await c1.ReceiveAsync().Guarded();
        Assert.Equal(["m0", "m1", "m2", "m3"], new[] { m0, m1, m2, m3 }.Select(Text));
        foreach (var (s, m) in new[] { (c1, m0), (c2, m1), (c2, m2), (c1, m3) }) await s.AckAsync(m).Guarded();
        var nothingLeft = c1.ReceiveAsync().AsTask();
        await AssertBlocked(nothingLeft, "a receive with every message acknowledged");
    }

    [SkippableFact]
    public async Task Concurrent_consumers_split_the_work_with_no_duplicates_and_nothing_lost_under_backpressure()
    {
        const int total = 2000;
        await using var bus = CreateBus(defaultCapacity: 64);
        var seen = new ConcurrentDictionary<string, string>();
        var duplicates = 0;
        var done = 0;
        using var allDone = new CancellationTokenSource();

        async Task Consume(string id)
        {
            await using var sub = bus.Subscribe("t", "g", id);
            try
            {
                while (true)
                {
                    var m = await sub.ReceiveAsync(allDone.Token);
                    if (!seen.TryAdd(Text(m), id)) Interlocked.Increment(ref duplicates);
                    await sub.AckAsync(m);
                    if (Interlocked.Increment(ref done) == total) await allDone.CancelAsync();
                }
            }
            catch (OperationCanceledException) when (allDone.IsCancellationRequested)
            {
            }
        }

        var consumers = Enumerable.Range(0, 4).Select(i => Task.Run(() => Consume($"c{i}"))).ToArray();
        // Two publishers; the small capacity makes them wait on the consumers (backpressure) many times.
        var publishers = new[] { Task.Run(() => PublishMany(bus, "t", total / 2)), Task.Run(() => PublishMany(bus, "t", total / 2, total / 2)) };
        await Task.WhenAll(publishers).WaitAsync(TimeSpan.FromSeconds(60));
        await Task.WhenAll(consumers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, duplicates);
        Assert.Equal(total, seen.Count);
        Assert.True(seen.Values.Distinct().Count() > 1, "the work should be shared by several consumers");
    }

    [SkippableFact]
    public async Task Unacked_messages_of_a_disposed_consumer_are_redelivered_to_the_group()
    {
        await using var bus = CreateBus();
        var first = bus.Subscribe("t", "g", "first");
        await PublishMany(bus, "t", 4);
        var m0 = await first.ReceiveAsync().Guarded();
        var m1 = await first.ReceiveAsync().Guarded();
        var m2 = await first.ReceiveAsync().Guarded();
        await first.AckAsync(m1).Guarded();
        await first.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => first.ReceiveAsync().AsTask()).Guarded();

        await using var second = bus.Subscribe("t", "g", "second");
        var r0 = await second.ReceiveAsync().Guarded();
        var r2 = await second.ReceiveAsync().Guarded();
        var r3 = await second.ReceiveAsync().Guarded();
        Assert.Equal((m0.Id, "m0", 2), (r0.Id, Text(r0), r0.DeliveryCount));
        Assert.Equal((m2.Id, "m2", 2), (r2.Id, Text(r2), r2.DeliveryCount));
        Assert.Equal(("m3", 1), (Text(r3), r3.DeliveryCount));
        foreach (var m in new[] { r0, r2, r3 }) await second.AckAsync(m).Guarded();
        await AssertBlocked(second.ReceiveAsync().AsTask(), "a receive with every message acknowledged");
    }

    [SkippableFact]
    public async Task A_waiting_consumer_gets_the_messages_of_a_consumer_that_leaves()
    {
        await using var bus = CreateBus();
        var first = bus.Subscribe("t", "g", "first");
        await using var second = bus.Subscribe("t", "g", "second");
        await PublishMany(bus, "t", 1);
        var m = await first.ReceiveAsync().Guarded();
        var waiting = second.ReceiveAsync().AsTask();
        await AssertBlocked(waiting, "the second consumer's receive");
        await first.DisposeAsync();
        var r = await waiting.Guarded();
        Assert.Equal((m.Id, 2), (r.Id, r.DeliveryCount));
    }

    [SkippableFact]
    public async Task Nack_redelivers_at_once_with_a_higher_delivery_count_and_ack_is_idempotent()
    {
        await using var bus = CreateBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        await PublishMany(bus, "t", 2);
        var m0 = await sub.ReceiveAsync().Guarded();
        await sub.NackAsync(m0).Guarded();
        await sub.NackAsync(m0).Guarded(); // a second nack of a message no longer held does nothing
        var again = await sub.ReceiveAsync().Guarded();
        Assert.Equal((m0.Id, "m0", 2), (again.Id, Text(again), again.DeliveryCount));
        await sub.NackAsync(again).Guarded();
        var third = await sub.ReceiveAsync().Guarded();
        Assert.Equal((m0.Id, 3), (third.Id, third.DeliveryCount));
        await sub.AckAsync(third).Guarded();
        await sub.AckAsync(third).Guarded();
        await sub.NackAsync(third).Guarded(); // nack after ack: nothing to redeliver
        var m1 = await sub.ReceiveAsync().Guarded();
        Assert.Equal(("m1", 1), (Text(m1), m1.DeliveryCount));
        await sub.AckAsync(m1).Guarded();
        await AssertBlocked(sub.ReceiveAsync().AsTask(), "a receive with every message acknowledged");
    }

    [SkippableFact]
    public async Task A_nacked_message_goes_to_a_waiting_consumer_of_the_group()
    {
        await using var bus = CreateBus();
        await using var holder = bus.Subscribe("t", "g", "holder");
        await using var other = bus.Subscribe("t", "g", "other");
        await PublishMany(bus, "t", 1);
        var m = await holder.ReceiveAsync().Guarded();
        var waiting = other.ReceiveAsync().AsTask();
        await AssertBlocked(waiting, "the other consumer's receive");
        await holder.NackAsync(m).Guarded();
        var r = await waiting.Guarded();
        Assert.Equal((m.Id, 2), (r.Id, r.DeliveryCount));
    }

    [SkippableFact]
    public async Task Messages_published_before_the_first_subscription_are_delivered()
    {
        await using var bus = CreateBus();
        await PublishMany(bus, "t", 3);
        await using var sub = bus.Subscribe("t", "g", "c");
        Assert.Equal(["m0", "m1", "m2"], (await ReceiveAndAck(sub, 3)).Select(Text));
    }

    [SkippableFact]
    public async Task A_group_that_subscribes_late_receives_the_retained_messages()
    {
        await using var bus = CreateBus();
        await PublishMany(bus, "t", 5);
        await using var early = bus.Subscribe("t", "early", "e");
        Assert.Equal(5, (await ReceiveAndAck(early, 5)).Count);
        await PublishMany(bus, "t", 2, 5);
        await using var late = bus.Subscribe("t", "late", "l");
        var gotLate = await ReceiveAndAck(late, 2);
        Assert.Equal(["m5", "m6"], gotLate.Select(Text)); // what every earlier group had acknowledged is gone
    }

    [SkippableFact]
    public async Task Publisher_waits_while_the_slowest_group_is_capacity_behind_and_resumes_after_acks()
    {
        await using var bus = CreateBus(defaultCapacity: 100, topicCapacities: new Dictionary<string, int> { ["t"] = 3 });
        await using var fast = bus.Subscribe("t", "fast", "f");
        await using var slow = bus.Subscribe("t", "slow", "s");
        await PublishMany(bus, "t", 3);
        await ReceiveAndAck(fast, 3);

        var blocked = bus.PublishAsync("t", "k3", Bytes(3)).AsTask();
        await AssertBlocked(blocked, "a publish while the slow group has 3 unacknowledged");
        var s0 = await slow.ReceiveAsync().Guarded();
        await AssertBlocked(blocked, "a publish while the slow group has received but not acknowledged");
        await slow.AckAsync(s0).Guarded();
        var id = await blocked.Guarded();
        Assert.Equal(["m1", "m2", "m3"], (await ReceiveAndAck(slow, 3)).Select(Text));
        Assert.Equal(id, (await ReceiveAndAck(fast, 1)).Single().Id);

        // Other topics use the default capacity and are not affected.
        await PublishMany(bus, "other", 50);
    }

    [SkippableFact]
    public async Task Without_any_group_the_topic_holds_capacity_messages_then_waits_for_one()
    {
        await using var bus = CreateBus(defaultCapacity: 2);
        await PublishMany(bus, "t", 2);
        var blocked = bus.PublishAsync("t", "k2", Bytes(2)).AsTask();
        await AssertBlocked(blocked, "a third publish into a topic of capacity 2");
        await using var sub = bus.Subscribe("t", "g", "c");
        await ReceiveAndAck(sub, 1);
        await blocked.Guarded();
        Assert.Equal(["m1", "m2"], (await ReceiveAndAck(sub, 2)).Select(Text));
    }

    [SkippableFact]
    public async Task Cancelling_a_receive_loses_no_message()
    {
        await using var bus = CreateBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sub.ReceiveAsync(new CancellationToken(true)).AsTask());
        using var cts = new CancellationTokenSource();
        var pending = sub.ReceiveAsync(cts.Token).AsTask();
        await AssertBlocked(pending, "a receive on an empty topic");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending).Guarded();
        await PublishMany(bus, "t", 1);
        var m = await sub.ReceiveAsync().Guarded();
        Assert.Equal(("m0", 1), (Text(m), m.DeliveryCount));
    }

    [SkippableFact]
    public async Task Cancelling_a_blocked_publish_does_not_append_the_message()
    {
        await using var bus = CreateBus(defaultCapacity: 1);
        await PublishMany(bus, "t", 1);
        using var cts = new CancellationTokenSource();
        var blocked = bus.PublishAsync("t", "k", Bytes(1), null, cts.Token).AsTask();
        await AssertBlocked(blocked, "a publish into a full topic");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked).Guarded();
        await using var sub = bus.Subscribe("t", "g", "c");
        Assert.Equal(["m0"], (await ReceiveAndAck(sub, 1)).Select(Text));
        await AssertBlocked(sub.ReceiveAsync().AsTask(), "a receive after the only message");
    }

    [SkippableFact]
    public async Task Disposing_the_bus_ends_waiting_receivers_and_publishers()
    {
        var bus = CreateBus(defaultCapacity: 1);
        var sub = bus.Subscribe("t", "g", "c");
        var receive = sub.ReceiveAsync().AsTask();
        var idle = bus.Subscribe("idle", "g", "c").ReceiveAsync().AsTask();
        await PublishMany(bus, "full", 1);
        var publish = bus.PublishAsync("full", "k", Bytes(1)).AsTask();
        await AssertBlocked(idle, "a receive on an empty topic");
        await AssertBlocked(publish, "a publish into a full topic");

        await bus.DisposeAsync();
        var m = await Assert.ThrowsAsync<ObjectDisposedException>(() => idle).Guarded();
        Assert.Contains("disposed", m.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => publish).Guarded();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => receive).Guarded();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => bus.PublishAsync("t", "k", Bytes(0)).AsTask());
        Assert.Throws<ObjectDisposedException>(() => bus.Subscribe("t", "g", "c2"));
        await sub.DisposeAsync(); // disposing a subscription after the bus is harmless
        await bus.DisposeAsync();
    }

    [SkippableFact]
    public async Task A_consumer_id_is_unique_among_the_live_consumers_of_a_group()
    {
        await using var bus = CreateBus();
        var sub = bus.Subscribe("t", "g", "c");
        Assert.Throws<InvalidOperationException>(() => bus.Subscribe("t", "g", "c"));
        await using var otherGroup = bus.Subscribe("t", "g2", "c");
        await sub.DisposeAsync();
        await using var again = bus.Subscribe("t", "g", "c");
    }

    [SkippableFact]
    public async Task Ack_of_a_message_from_another_topic_is_rejected()
    {
        await using var bus = CreateBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        await using var other = bus.Subscribe("u", "g", "c");
        await bus.PublishAsync("u", "k", Bytes(0)).Guarded();
        var foreign = await other.ReceiveAsync().Guarded();
        await Assert.ThrowsAsync<ArgumentException>(() => sub.AckAsync(foreign).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => sub.NackAsync(foreign).AsTask());
        await other.AckAsync(foreign).Guarded();
    }
}
