using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;

namespace OnlineRl.Messaging.Kafka.Tests;

// Broker faults injected into librdkafka's mock cluster while a producer publishes and a consumer group reads:
// each must end with every message received and acknowledged, and exactly as many messages in the topic as were
// published (the idempotent producer never writes one twice, whatever it retried). Each test has its own
// three-broker cluster, so its faults touch no other test.
public class KafkaFaultTests
{
    private const int Total = 200;
    private const int Partitions = 3;
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(90);

    public static TheoryData<string> Faults => ["broker down and up", "leader change", "produce errors", "fetch errors", "commit errors", "slow broker"];

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Every_message_arrives_once_in_the_topic_through(string fault)
    {
        using var kafka = KafkaMock.StartInProcess(brokers: 3);
        var cluster = kafka.Cluster!;
        const string topic = "faulty";
        cluster.CreateTopic(topic, Partitions);
        await using var bus = new KafkaEventBus(kafka.BusOptions());

        var received = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var consumers = Enumerable.Range(0, 2).Select(i => Task.Run(() => ConsumeAsync(bus.Subscribe(topic, "readers", $"reader-{i}"), received, stop.Token))).ToList();
        var published = 0;
        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < Total; i++)
            {
                await bus.PublishAsync(topic, $"k{i}", Encoding.UTF8.GetBytes($"m{i}"));
                Interlocked.Increment(ref published);
                await Task.Delay(3);
            }
        });

        await WaitUntil(() => received.Count >= Total / 4, "the first quarter of the messages");
        // Partition p of a new topic is led by broker p + 1; broker 2 leads partition 1.
        switch (fault)
        {
            case "broker down and up":
                cluster.SetBrokerDown(2);
                var stalled = Volatile.Read(ref published);
                await Task.Delay(TimeSpan.FromSeconds(2));
                cluster.SetBrokerUp(2);
                Assert.True(stalled < Total, "the broker went down after everything was published: the fault proved nothing");
                break;
            case "leader change":
                for (var p = 0; p < Partitions; p++) cluster.SetPartitionLeader(topic, p, (p + 1) % 3 + 1);
                break;
            case "produce errors":
                cluster.PushRequestErrors(KafkaApi.Produce, ErrorCode.NotLeaderForPartition, ErrorCode.RequestTimedOut,
                    ErrorCode.NotEnoughReplicas, ErrorCode.Local_Transport, ErrorCode.NotEnoughReplicasAfterAppend);
                break;
            case "fetch errors":
                cluster.PushRequestErrors(KafkaApi.Fetch, ErrorCode.NotLeaderForPartition, ErrorCode.Local_Transport,
                    ErrorCode.UnknownTopicOrPart, ErrorCode.RequestTimedOut);
                break;
            case "commit errors":
                cluster.PushRequestErrors(KafkaApi.OffsetCommit, ErrorCode.NotCoordinatorForGroup, ErrorCode.RequestTimedOut,
                    ErrorCode.Local_Transport, ErrorCode.GroupLoadInProgress);
                break;
            case "slow broker":
                cluster.SetBrokerRoundTripTime(2, TimeSpan.FromMilliseconds(200));
                await Task.Delay(TimeSpan.FromSeconds(2));
                cluster.SetBrokerRoundTripTime(2, TimeSpan.Zero);
                break;
        }

        await publishing.WaitAsync(Guard);
        await WaitUntil(() => received.Count == Total, $"all {Total} messages (have {received.Count})");
        await stop.CancelAsync();
        await Task.WhenAll(consumers).WaitAsync(Guard);
        Assert.Equal(Enumerable.Range(0, Total).Select(i => $"m{i}").Order(), received.Keys.Order());

        // A fresh group reads the whole topic: each message is in it exactly once.
        var copies = new ConcurrentDictionary<string, int>();
        using var done = new CancellationTokenSource();
        var auditor = Task.Run(() => ConsumeAsync(bus.Subscribe(topic, "auditor", "auditor-0"), copies, done.Token));
        await WaitUntil(() => copies.Count == Total, "the audit of the whole topic");
        await Task.Delay(500); // a duplicate written by a retried produce would arrive by now
        await done.CancelAsync();
        await auditor.WaitAsync(Guard);
        Assert.All(copies, kv => Assert.True(kv.Value == 1, $"{kv.Key} is in the topic {kv.Value} times"));
    }

    /// <summary>Receives and acknowledges until cancelled, counting deliveries per payload.</summary>
    private static async Task ConsumeAsync(IEventSubscription subscription, ConcurrentDictionary<string, int> received, CancellationToken stop)
    {
        await using var _ = subscription;
        try
        {
            while (true)
            {
                var message = await subscription.ReceiveAsync(stop);
                received.AddOrUpdate(Encoding.UTF8.GetString(message.Payload.Span), 1, (_, n) => n + 1);
                await subscription.AckAsync(message, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Guard;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"gave up waiting for {what}");
            await Task.Delay(20);
        }
    }
}
