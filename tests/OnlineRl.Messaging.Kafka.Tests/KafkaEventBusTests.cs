using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Confluent.Kafka;

namespace OnlineRl.Messaging.Kafka.Tests;

/// <summary>One mock cluster for the whole class; each test uses its own topics and groups.</summary>
public sealed class MockClusterFixture : IDisposable
{
    public KafkaMock Kafka { get; } = KafkaMock.StartInProcess(brokers: 2);

    public void Dispose() => Kafka.Dispose();
}

public class KafkaEventBusTests(MockClusterFixture fixture) : IClassFixture<MockClusterFixture>
{
    /// <summary>Failure guard for waits (group joins and rebalances take up to a few seconds on the mock).</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly KafkaMock _kafka = fixture.Kafka;

    private static string Text(BusMessage m) => Encoding.UTF8.GetString(m.Payload.Span);

    private static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    private string NewTopic(int partitions)
    {
        var topic = UniqueName("t");
        _kafka.Cluster!.CreateTopic(topic, partitions);
        return topic;
    }

    private static async Task<List<string>> PublishMany(IEventBus bus, string topic, int count, int start = 0)
    {
        var ids = new List<string>();
        for (var i = start; i < start + count; i++)
            ids.Add(await bus.PublishAsync(topic, $"k{i}", Encoding.UTF8.GetBytes($"m{i}")).AsTask().WaitAsync(Guard));
        return ids;
    }

    private static Task<BusMessage> Receive(IEventSubscription subscription) =>
        subscription.ReceiveAsync().AsTask().WaitAsync(Guard);

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Guard;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"gave up waiting for {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Every_group_receives_every_message_with_its_key_headers_and_id()
    {
        var topic = NewTopic(partitions: 3);
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        var headers = new Dictionary<string, string> { [MessageHeaders.SchemaVersion] = "1", [MessageHeaders.RunId] = "run-ü" };
        var ids = new Dictionary<string, string>();
        for (var i = 0; i < 20; i++)
            ids[$"m{i}"] = await bus.PublishAsync(topic, $"prompt-{i}", Encoding.UTF8.GetBytes($"m{i}"), headers).AsTask().WaitAsync(Guard);

        foreach (var group in new[] { "scorer", "learner" })
        {
            await using var subscription = bus.Subscribe(topic, group, group + "-0");
            var got = new Dictionary<string, BusMessage>();
            while (got.Count < 20)
            {
                var m = await Receive(subscription);
                got[Text(m)] = m;
                await subscription.AckAsync(m);
            }
            for (var i = 0; i < 20; i++)
            {
                var m = got[$"m{i}"];
                Assert.Equal(topic, m.Topic);
                Assert.Equal($"prompt-{i}", m.Key);
                Assert.Equal(headers, m.Headers);
                Assert.Equal(ids[$"m{i}"], m.Id);
                Assert.Equal(1, m.DeliveryCount);
            }
            // One key, one partition: messages of a prompt stay in order.
            Assert.Equal(20, got.Values.Select(m => m.Id).Distinct().Count());
        }
    }

    [Fact]
    public async Task Consumers_of_one_group_split_the_partitions_and_the_work()
    {
        var topic = NewTopic(partitions: 4);
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        await using var a = (KafkaSubscription)bus.Subscribe(topic, "g", "a");
        await using var b = (KafkaSubscription)bus.Subscribe(topic, "g", "b");
        await WaitUntil(() => a.AssignedPartitions.Count == 2 && b.AssignedPartitions.Count == 2, "two partitions each");
        Assert.Empty(a.AssignedPartitions.Intersect(b.AssignedPartitions));
        const int total = 200;
        await PublishMany(bus, topic, total);

        var seen = new ConcurrentDictionary<string, string>();
        var duplicates = 0;
        using var allDone = new CancellationTokenSource();
        async Task Consume(KafkaSubscription subscription)
        {
            try
            {
                while (true)
                {
                    var m = await subscription.ReceiveAsync(allDone.Token);
                    Assert.Contains(int.Parse(m.Id.Split(':')[0]), subscription.AssignedPartitions);
                    if (!seen.TryAdd(Text(m), subscription.ConsumerId)) Interlocked.Increment(ref duplicates);
                    await subscription.AckAsync(m);
                    if (seen.Count == total) await allDone.CancelAsync();
                }
            }
            catch (OperationCanceledException) when (allDone.IsCancellationRequested)
            {
            }
        }
        await Task.WhenAll(Task.Run(() => Consume(a)), Task.Run(() => Consume(b))).WaitAsync(Guard);
        Assert.Equal(0, duplicates);
        Assert.Equal(total, seen.Count);
        Assert.Contains("a", seen.Values);
        Assert.Contains("b", seen.Values);
    }

    [Fact]
    public async Task Unacknowledged_messages_of_a_disposed_consumer_go_to_the_next_consumer_of_the_group()
    {
        var topic = NewTopic(partitions: 1);
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        await PublishMany(bus, topic, 10);
        var first = bus.Subscribe(topic, "g", "first");
        for (var i = 0; i < 10; i++)
        {
            var m = await Receive(first);
            Assert.Equal($"m{i}", Text(m));
            if (i < 5) await first.AckAsync(m); // handled m0..m4; m5..m9 received but not handled
        }
        await first.DisposeAsync();

        await using var next = bus.Subscribe(topic, "g", "next");
        for (var i = 5; i < 10; i++)
        {
            var m = await Receive(next);
            Assert.Equal($"m{i}", Text(m));
            Assert.Equal(2, m.DeliveryCount); // same bus: the handover is counted
            await next.AckAsync(m);
        }
    }

    [Fact]
    public async Task Out_of_order_acks_never_commit_past_an_unacknowledged_message()
    {
        var topic = NewTopic(partitions: 1);
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        await PublishMany(bus, topic, 10);
        var first = bus.Subscribe(topic, "g", "first");
        var received = new List<BusMessage>();
        for (var i = 0; i < 10; i++) received.Add(await Receive(first));
        // Acknowledge in reverse order, all but m4.
        foreach (var m in Enumerable.Reverse(received).Where(m => Text(m) != "m4")) await first.AckAsync(m);

        // The committed offset, as the broker has it, stops at m4 (a raw client asks the group coordinator).
        using var probe = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _kafka.BootstrapServers, GroupId = "g" }).Build();
        await WaitUntil(() => probe.Committed([new TopicPartition(topic, 0)], TimeSpan.FromSeconds(5))[0].Offset == 4,
            "the commit of offset 4");
        await first.DisposeAsync(); // the final commit on leaving must not pass m4 either
        Assert.Equal(4, probe.Committed([new TopicPartition(topic, 0)], TimeSpan.FromSeconds(5))[0].Offset.Value);

        await using var next = bus.Subscribe(topic, "g", "next");
        var redelivered = await Receive(next);
        Assert.Equal("m4", Text(redelivered));
        Assert.Equal(2, redelivered.DeliveryCount);
    }

    [Fact]
    public async Task A_reader_behind_a_small_buffer_gets_every_message_once_in_order_and_all_of_it_is_committed()
    {
        var topic = NewTopic(partitions: 2);
        await using var bus = new KafkaEventBus(_kafka.BusOptions() with { MaxBufferedMessagesPerSubscription = 8 });
        await PublishMany(bus, topic, 200);
        await using var subscription = bus.Subscribe(topic, "g", "g-0");
        var received = new List<BusMessage>();
        async Task ReceiveAndAck(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var m = await Receive(subscription);
                received.Add(m);
                await subscription.AckAsync(m);
            }
        }
        // A fast reader first (the buffer fills and empties at once), then one that stays away long enough
        // for the subscription to pause fetching, then the rest after the resume.
        await ReceiveAndAck(60);
        await Task.Delay(TimeSpan.FromSeconds(2));
        await ReceiveAndAck(140);

        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"m{i}").Order(), received.Select(Text).Order());
        Assert.All(received, m => Assert.Equal(1, m.DeliveryCount));
        foreach (var partition in received.GroupBy(m => m.Id.Split(':')[0]))
        {
            var offsets = partition.Select(m => long.Parse(m.Id.Split(':')[1], CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(offsets.Order(), offsets); // per-partition publish order
        }
        using var probe = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = _kafka.BootstrapServers, GroupId = "g" }).Build();
        var ends = received.GroupBy(m => int.Parse(m.Id.Split(':')[0], CultureInfo.InvariantCulture))
            .Select(p => new TopicPartitionOffset(topic, p.Key, p.Count())).ToList();
        await WaitUntil(() => probe.Committed(ends.Select(e => e.TopicPartition), TimeSpan.FromSeconds(5))
            .All(c => c.Offset == ends.Single(e => e.Partition == c.Partition).Offset), "the commit of every acknowledged message");
    }

    [Fact]
    public async Task Nacked_message_comes_again_later_with_a_higher_delivery_count()
    {
        var topic = NewTopic(partitions: 1);
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        await PublishMany(bus, topic, 3);
        await using (var subscription = bus.Subscribe(topic, "g", "c"))
        {
            var m0 = await Receive(subscription);
            Assert.Equal("m0", Text(m0));
            await subscription.NackAsync(m0);
            await subscription.NackAsync(m0); // a second nack of the same delivery changes nothing
            // The redelivery may come before m1 and m2 when they were not fetched yet: no order is promised.
            var deliveries = new Dictionary<string, int>();
            for (var i = 0; i < 3; i++)
            {
                var m = await Receive(subscription);
                deliveries.Add(Text(m), m.DeliveryCount);
                await subscription.AckAsync(m);
            }
            Assert.Equal(new Dictionary<string, int> { ["m0"] = 2, ["m1"] = 1, ["m2"] = 1 }, deliveries);
        }
        // Everything was acknowledged: a later consumer of the group starts after m2.
        await PublishMany(bus, topic, 1, start: 3);
        await using var later = bus.Subscribe(topic, "g", "later");
        Assert.Equal("m3", Text(await Receive(later)));
    }

    [Fact]
    public async Task Consumer_joining_mid_stream_takes_partitions_and_one_leaving_loses_nothing()
    {
        const int total = 300;
        var topic = NewTopic(partitions: 4);
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        var seen = new ConcurrentDictionary<string, ConcurrentBag<string>>();
        using var allDone = new CancellationTokenSource();
        async Task Consume(IEventSubscription subscription, CancellationToken stop)
        {
            try
            {
                while (true)
                {
                    var m = await subscription.ReceiveAsync(stop);
                    seen.GetOrAdd(Text(m), _ => []).Add(subscription.ConsumerId);
                    await Task.Delay(2, CancellationToken.None); // handling takes a moment, so acks trail receipts
                    await subscription.AckAsync(m, CancellationToken.None);
                    if (seen.Count == total) await allDone.CancelAsync();
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
        }

        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await bus.PublishAsync(topic, $"k{i}", Encoding.UTF8.GetBytes($"m{i}"));
                await Task.Delay(5);
            }
        });
        var early = (KafkaSubscription)bus.Subscribe(topic, "g", "early");
        using var earlyStop = CancellationTokenSource.CreateLinkedTokenSource(allDone.Token);
        var earlyLoop = Task.Run(() => Consume(early, earlyStop.Token));
        await WaitUntil(() => seen.Count >= 50, "the early consumer's first messages");

        await using var joiner = (KafkaSubscription)bus.Subscribe(topic, "g", "joiner");
        var joinerLoop = Task.Run(() => Consume(joiner, allDone.Token));
        await WaitUntil(() => joiner.AssignedPartitions.Count > 0 && early.AssignedPartitions.Count > 0, "the rebalance to share the partitions");
        Assert.Equal(4, joiner.AssignedPartitions.Count + early.AssignedPartitions.Count);
        await WaitUntil(() => seen.Values.Any(consumers => consumers.Contains("joiner")), "the joiner's first message");

        // The early consumer leaves mid-stream, with messages in hand and in its queue.
        await earlyStop.CancelAsync();
        await earlyLoop.WaitAsync(Guard);
        await early.DisposeAsync();
        await WaitUntil(() => joiner.AssignedPartitions.Count == 4, "the joiner to own every partition");

        await publishing.WaitAsync(Guard);
        await joinerLoop.WaitAsync(Guard);
        Assert.Equal(total, seen.Count); // nothing lost (a message may have been handled twice: at least once)
    }

    [Fact]
    public async Task Pending_receive_ends_when_the_subscription_is_disposed()
    {
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        var subscription = bus.Subscribe(NewTopic(partitions: 1), "g", "c");
        var pending = subscription.ReceiveAsync().AsTask();
        await subscription.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.WaitAsync(Guard));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => subscription.ReceiveAsync().AsTask());
    }

    [Fact]
    public async Task Topics_are_created_on_first_use()
    {
        var topic = UniqueName("auto"); // not created beforehand
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        await using var subscription = bus.Subscribe(topic, "g", "c");
        await PublishMany(bus, topic, 1);
        Assert.Equal("m0", Text(await Receive(subscription)));
    }

    [Fact]
    public async Task Publishing_waits_while_the_producer_queue_is_full()
    {
        var topic = NewTopic(partitions: 1);
        var options = _kafka.BusOptions() with
        {
            Settings = new Dictionary<string, string>(KafkaMock.FastGroupSettings) { ["queue.buffering.max.messages"] = "2" },
        };
        await using var bus = new KafkaEventBus(options);
        // 40 concurrent publishes against a 2-message queue: all must wait their turn, none may fail.
        var ids = await Task.WhenAll(Enumerable.Range(0, 40).Select(i =>
            bus.PublishAsync(topic, $"k{i}", Encoding.UTF8.GetBytes($"m{i}")).AsTask())).WaitAsync(Guard);
        Assert.Equal(40, ids.Distinct().Count());
    }

    [Fact]
    public void Settings_reach_librdkafka_and_bad_or_reserved_ones_are_refused_by_name()
    {
        var invalid = _kafka.BusOptions() with { Settings = new Dictionary<string, string> { ["security.protocol"] = "carrier_pigeon" } };
        var error = Assert.Throws<ArgumentException>(() => new KafkaEventBus(invalid));
        Assert.Contains("security.protocol", error.Message);

        var unknown = _kafka.BusOptions() with { Settings = new Dictionary<string, string> { ["sasl.mechanizm"] = "PLAIN" } };
        Assert.Contains("sasl.mechanizm", Assert.Throws<ArgumentException>(() => new KafkaEventBus(unknown)).Message);

        var reserved = _kafka.BusOptions() with { Settings = new Dictionary<string, string> { ["enable.auto.commit"] = "true" } };
        Assert.Contains("enable.auto.commit", Assert.Throws<ArgumentException>(() => new KafkaEventBus(reserved)).Message);

        // Valid SASL and TLS settings reach librdkafka: KafkaSecurityTests.
    }

    [Fact]
    public async Task Duplicate_consumer_id_in_a_group_is_refused()
    {
        await using var bus = new KafkaEventBus(_kafka.BusOptions());
        var topic = NewTopic(partitions: 1);
        await using var first = bus.Subscribe(topic, "g", "c");
        Assert.Throws<InvalidOperationException>(() => bus.Subscribe(topic, "g", "c"));
    }
}
