using System.Collections.Concurrent;
using System.Text;

namespace OnlineRl.Messaging.Tests;

public class InProcessEventBusTests
{
    private static byte[] Bytes(int i) => Encoding.UTF8.GetBytes($"m{i}");
    private static string Text(BusMessage m) => Encoding.UTF8.GetString(m.Payload.Span);

    private static async Task PublishMany(IEventBus bus, string topic, int count, int start = 0)
    {
        for (var i = start; i < start + count; i++)
            await bus.PublishAsync(topic, $"k{i}", Bytes(i)).Guarded();
    }

    private static async Task<List<BusMessage>> ReceiveAndAck(IEventSubscription sub, int count)
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

    [Fact]
    public async Task Message_carries_topic_key_payload_headers_id_and_delivery_count()
    {
        await using var bus = new InProcessEventBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        var headers = new Dictionary<string, string> { ["run-id"] = "r1" };
        var payload = new byte[] { 1, 2, 3 };
        var id = await bus.PublishAsync("t", "key-1", payload, headers).Guarded();
        payload[0] = 99; // the bus copied it
        headers["run-id"] = "changed";
        var m = await sub.ReceiveAsync().Guarded();
        Assert.Equal("t", m.Topic);
        Assert.Equal("key-1", m.Key);
        Assert.Equal([1, 2, 3], m.Payload.ToArray());
        Assert.Equal("r1", m.Headers["run-id"]);
        Assert.Equal(id, m.Id);
        Assert.Equal(1, m.DeliveryCount);
        Assert.Equal("t", sub.Topic);
        Assert.Equal("g", sub.GroupId);
        Assert.Equal("c", sub.ConsumerId);
    }

    [Fact]
    public async Task Two_groups_each_receive_every_message_in_order()
    {
        await using var bus = new InProcessEventBus();
        await using var a = bus.Subscribe("t", "group-a", "a0");
        await using var b = bus.Subscribe("t", "group-b", "b0");
        await PublishMany(bus, "t", 50);
        var gotA = await ReceiveAndAck(a, 50);
        var gotB = await ReceiveAndAck(b, 50);
        var expected = Enumerable.Range(0, 50).Select(i => $"m{i}").ToList();
        Assert.Equal(expected, gotA.Select(Text).ToList());
        Assert.Equal(expected, gotB.Select(Text).ToList());
        Assert.Equal(0, bus.RetainedCount("t"));
        Assert.Equal(0, bus.Lag("t", "group-a"));
    }

    [Fact]
    public async Task Consumers_of_one_group_get_different_messages()
    {
        await using var bus = new InProcessEventBus();
        await using var c1 = bus.Subscribe("t", "g", "c1");
        await using var c2 = bus.Subscribe("t", "g", "c2");
        await PublishMany(bus, "t", 4);
        var m0 = await c1.ReceiveAsync().Guarded();
        var m1 = await c2.ReceiveAsync().Guarded();
        var m2 = await c2.ReceiveAsync().Guarded();
        var m3 = await c1.ReceiveAsync().Guarded();
        Assert.Equal(["m0", "m1", "m2", "m3"], new[] { m0, m1, m2, m3 }.Select(Text));
        foreach (var (s, m) in new[] { (c1, m0), (c2, m1), (c2, m2), (c1, m3) }) await s.AckAsync(m).Guarded();
        Assert.Equal(0, bus.Lag("t", "g"));
    }

    [Fact]
    public async Task Concurrent_consumers_of_one_group_split_the_work_with_no_duplicates_and_nothing_lost()
    {
        const int total = 3000;
        await using var bus = new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 64 });
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
        await Task.WhenAll(publishers).Guarded();
        await Task.WhenAll(consumers).Guarded();
        Assert.Equal(0, duplicates);
        Assert.Equal(total, seen.Count);
        Assert.Equal(0, bus.RetainedCount("t"));
    }

    [Fact]
    public async Task Unacked_messages_of_a_disposed_consumer_are_redelivered_to_the_group()
    {
        await using var bus = new InProcessEventBus();
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
        Assert.Equal(3, bus.Lag("t", "g"));
        foreach (var m in new[] { r0, r2, r3 }) await second.AckAsync(m).Guarded();
        Assert.Equal(0, bus.Lag("t", "g"));
    }

    [Fact]
    public async Task A_waiting_consumer_gets_the_messages_of_a_consumer_that_leaves()
    {
        await using var bus = new InProcessEventBus();
        var first = bus.Subscribe("t", "g", "first");
        await using var second = bus.Subscribe("t", "g", "second");
        await PublishMany(bus, "t", 1);
        var m = await first.ReceiveAsync().Guarded();
        var waiting = second.ReceiveAsync().AsTask();
        Assert.False(waiting.IsCompleted);
        await first.DisposeAsync();
        var r = await waiting.Guarded();
        Assert.Equal((m.Id, 2), (r.Id, r.DeliveryCount));
    }

    [Fact]
    public async Task Nack_redelivers_with_a_higher_delivery_count_and_ack_is_idempotent()
    {
        await using var bus = new InProcessEventBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        await PublishMany(bus, "t", 2);
        var m0 = await sub.ReceiveAsync().Guarded();
        await sub.NackAsync(m0).Guarded();
        await sub.NackAsync(m0).Guarded(); // a second nack of a message no longer held does nothing
        var again = await sub.ReceiveAsync().Guarded();
        Assert.Equal((m0.Id, 2), (again.Id, again.DeliveryCount));
        await sub.AckAsync(again).Guarded();
        await sub.AckAsync(again).Guarded();
        await sub.NackAsync(again).Guarded(); // nack after ack: nothing to redeliver
        var m1 = await sub.ReceiveAsync().Guarded();
        Assert.Equal(("m1", 1), (Text(m1), m1.DeliveryCount));
        await sub.AckAsync(m1).Guarded();
        Assert.Equal(0, bus.Lag("t", "g"));
    }

    [Fact]
    public async Task Ack_of_a_foreign_or_undelivered_message_is_rejected()
    {
        await using var bus = new InProcessEventBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        await using var other = bus.Subscribe("u", "g", "c");
        await PublishMany(bus, "t", 2);
        await bus.PublishAsync("u", "k", Bytes(0)).Guarded();
        var m = await sub.ReceiveAsync().Guarded();
        var foreign = await other.ReceiveAsync().Guarded();
        await Assert.ThrowsAsync<ArgumentException>(() => sub.AckAsync(foreign).AsTask());
        await Assert.ThrowsAsync<InvalidOperationException>(() => sub.AckAsync(m with { Id = "1" }).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => sub.AckAsync(m with { Id = "x" }).AsTask());
    }

    [Fact]
    public async Task A_group_that_subscribes_late_receives_the_retained_messages()
    {
        await using var bus = new InProcessEventBus();
        await PublishMany(bus, "t", 5); // no group exists yet: all retained
        await using var early = bus.Subscribe("t", "early", "e");
        var gotEarly = await ReceiveAndAck(early, 5);
        Assert.Equal(0, bus.RetainedCount("t")); // the only known group acknowledged everything
        await PublishMany(bus, "t", 2, 5);
        await using var late = bus.Subscribe("t", "late", "l");
        var gotLate = await ReceiveAndAck(late, 2);
        Assert.Equal(["m5", "m6"], gotLate.Select(Text));
        Assert.Equal(5, gotEarly.Count);
    }

    [Fact]
    public async Task Messages_published_before_the_first_subscription_are_delivered()
    {
        await using var bus = new InProcessEventBus();
        await PublishMany(bus, "t", 3);
        await using var sub = bus.Subscribe("t", "g", "c");
        Assert.Equal(["m0", "m1", "m2"], (await ReceiveAndAck(sub, 3)).Select(Text));
    }

    [Fact]
    public async Task Publisher_waits_while_the_slowest_group_is_capacity_behind_and_resumes_after_acks()
    {
        await using var bus = new InProcessEventBus(new InProcessEventBusOptions
        {
            DefaultCapacity = 100,
            TopicCapacities = new Dictionary<string, int> { ["t"] = 3 },
        });
        await using var fast = bus.Subscribe("t", "fast", "f");
        await using var slow = bus.Subscribe("t", "slow", "s");
        await PublishMany(bus, "t", 3);
        await ReceiveAndAck(fast, 3);

        var blocked = bus.PublishAsync("t", "k3", Bytes(3)).AsTask();
        Assert.False(blocked.IsCompleted); // the slow group has 3 unacknowledged
        var s0 = await slow.ReceiveAsync().Guarded();
        Assert.False(blocked.IsCompleted); // received is not done: still 3 behind
        await slow.AckAsync(s0).Guarded();
        Assert.Equal("3", await blocked.Guarded());
        Assert.Equal(3, bus.RetainedCount("t"));

        // Other topics use the default capacity and are not affected.
        await PublishMany(bus, "other", 50);
    }

    [Fact]
    public async Task Without_any_group_the_topic_holds_capacity_messages_then_waits_for_one()
    {
        await using var bus = new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 2 });
        await PublishMany(bus, "t", 2);
        var blocked = bus.PublishAsync("t", "k2", Bytes(2)).AsTask();
        Assert.False(blocked.IsCompleted);
        await using var sub = bus.Subscribe("t", "g", "c");
        await ReceiveAndAck(sub, 1);
        await blocked.Guarded();
        Assert.Equal(["m1", "m2"], (await ReceiveAndAck(sub, 2)).Select(Text));
    }

    [Fact]
    public async Task Deleting_a_stalled_group_releases_the_publisher()
    {
        await using var bus = new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 1 });
        await using var stalled = bus.Subscribe("t", "stalled", "s");
        await PublishMany(bus, "t", 1);
        var blocked = bus.PublishAsync("t", "k", Bytes(1)).AsTask();
        Assert.False(blocked.IsCompleted);
        await using var live = bus.Subscribe("t", "live", "l");
        await ReceiveAndAck(live, 1);
        Assert.False(blocked.IsCompleted);
        Assert.True(bus.DeleteGroup("t", "stalled"));
        await blocked.Guarded();
        Assert.False(bus.DeleteGroup("t", "stalled"));
        Assert.Null(bus.Lag("t", "stalled"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stalled.ReceiveAsync().AsTask());
    }

    [Fact]
    public async Task Cancelling_a_receive_loses_no_message()
    {
        await using var bus = new InProcessEventBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sub.ReceiveAsync(new CancellationToken(true)).AsTask());
        using var cts = new CancellationTokenSource();
        var pending = sub.ReceiveAsync(cts.Token).AsTask();
        Assert.False(pending.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending).Guarded();
        await PublishMany(bus, "t", 1);
        var m = await sub.ReceiveAsync().Guarded();
        Assert.Equal(("m0", 1), (Text(m), m.DeliveryCount));
    }

    [Fact]
    public async Task Cancelling_a_blocked_publish_does_not_append_the_message()
    {
        await using var bus = new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 1 });
        await PublishMany(bus, "t", 1);
        using var cts = new CancellationTokenSource();
        var blocked = bus.PublishAsync("t", "k", Bytes(1), null, cts.Token).AsTask();
        Assert.False(blocked.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked).Guarded();
        Assert.Equal(1, bus.RetainedCount("t"));
        await using var sub = bus.Subscribe("t", "g", "c");
        await ReceiveAndAck(sub, 1);
        Assert.Equal(0, bus.Lag("t", "g"));
    }

    [Fact]
    public async Task Disposing_the_bus_ends_waiting_receivers_and_publishers()
    {
        var bus = new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 1 });
        var sub = bus.Subscribe("t", "g", "c");
        var receive = sub.ReceiveAsync().AsTask();
        var idle = bus.Subscribe("idle", "g", "c").ReceiveAsync().AsTask();
        await PublishMany(bus, "full", 1);
        var publish = bus.PublishAsync("full", "k", Bytes(1)).AsTask();
        Assert.False(idle.IsCompleted);
        Assert.False(publish.IsCompleted);

        await bus.DisposeAsync();
        var m = await Assert.ThrowsAsync<ObjectDisposedException>(() => idle).Guarded();
        Assert.Contains("disposed", m.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => publish).Guarded();
        _ = await Assert.ThrowsAsync<ObjectDisposedException>(() => receive).Guarded();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => bus.PublishAsync("t", "k", Bytes(0)).AsTask());
        Assert.Throws<ObjectDisposedException>(() => bus.Subscribe("t", "g", "c2"));
        await sub.DisposeAsync(); // disposing a subscription after the bus is harmless
        await bus.DisposeAsync();
    }

    [Fact]
    public async Task A_consumer_id_is_unique_among_the_live_consumers_of_a_group()
    {
        await using var bus = new InProcessEventBus();
        var sub = bus.Subscribe("t", "g", "c");
        Assert.Throws<InvalidOperationException>(() => bus.Subscribe("t", "g", "c"));
        await using var otherGroup = bus.Subscribe("t", "g2", "c");
        await sub.DisposeAsync();
        await using var again = bus.Subscribe("t", "g", "c");
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InProcessEventBus(new InProcessEventBusOptions
        {
            TopicCapacities = new Dictionary<string, int> { ["t"] = -1 },
        }));
    }
}
