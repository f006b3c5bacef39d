using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Messaging.Kafka;
using OnlineRl.Pipeline;

namespace OnlineRl.Distributed.Tests;

// Kafka keeps no delivery count. With the run's ledger as the delivery journal, a message that takes its consumer
// process down every time is counted across the restarts (each "process" here is a new bus and journal on the same
// ledger directory, sharing no memory) and dead-lettered once it exceeds the delivery limit, as on Redis Streams.
public sealed class KafkaDeliveryCountTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);
    private readonly string ledgerDir = Path.Combine(Path.GetTempPath(), $"onlinerl-deliveries-{Guid.NewGuid():N}");

    [Fact]
    public async Task A_message_that_kills_its_consumer_is_counted_across_restarts_and_dead_lettered_after_the_limit()
    {
        using var kafka = KafkaMock.StartInProcess();
        const string runId = "delivery-count-test";
        var poison = new PromptMessage { PromptId = "poison#0", Text = "1+1=", DatasetIndex = 0 }.Stamp(runId);
        await using (var feeder = new KafkaEventBus(kafka.BusOptions()))
            await new Publisher(feeder).PublishAsync(Topics.Prompts, poison, poison.PromptId).AsTask().WaitAsync(Guard);

        // Four generator processes in turn take the prompt and die with it in hand (ids repeat, as restarts do).
        var services = new[] { "generator-0", "generator-0", "generator-1", "generator-0" };
        for (var i = 0; i < services.Length; i++)
        {
            using var journal = new LedgerDeliveryJournal(ledgerDir, services[i]);
            await using var bus = new KafkaEventBus(kafka.BusOptions() with { Deliveries = journal });
            await using var subscription = bus.Subscribe(Topics.Prompts, "generators", services[i]);
            var message = await subscription.ReceiveAsync().AsTask().WaitAsync(Guard);
            Assert.Equal((poison.PromptId, i + 1), (message.Key, message.DeliveryCount));
        }

        // Control: a bus counting in its own process only starts again at 1.
        await using (var forgetful = new KafkaEventBus(kafka.BusOptions()))
        await using (var subscription = forgetful.Subscribe(Topics.Prompts, "generators", "generator-2"))
            Assert.Equal(1, (await subscription.ReceiveAsync().AsTask().WaitAsync(Guard)).DeliveryCount);

        // The fifth journaled delivery is the last attempt; the handler fails on it and the message is dead-lettered.
        using (var journal = new LedgerDeliveryJournal(ledgerDir, "generator-1"))
        await using (var bus = new KafkaEventBus(kafka.BusOptions() with { Deliveries = journal }))
        {
            var consumer = new Consumer<PromptMessage>(bus, Topics.Prompts, "generators", "generator-1",
                new ConsumerOptions { ServiceId = "generator-1", MaxDeliveryAttempts = 5 });
            await using var subscription = bus.Subscribe(Topics.Prompts, "generators", "generator-1");
            var message = await subscription.ReceiveAsync().AsTask().WaitAsync(Guard);
            Assert.Equal(5, message.DeliveryCount);
            var outcome = await consumer.ProcessAsync(subscription, message, (_, _, _) => throw new InvalidOperationException("crashes again"), CancellationToken.None);
            Assert.Equal(ConsumeOutcome.DeadLettered, outcome);

            await using var letters = bus.Subscribe(Topics.DeadLetter, "audit", "audit-0");
            var letter = MessageCodec.Default.Decode<DeadLetter>((await letters.ReceiveAsync().AsTask().WaitAsync(Guard)).Payload.Span).Value!;
            Assert.Equal((poison.PromptId, 5), (letter.Key, letter.DeliveryCount));
            Assert.Contains("failed on delivery 5 of 5", letter.Reason);
        }

        var report = Ledger.Verify(ledgerDir);
        // The prompt's five journaled deliveries and the dead letter's one to the audit group.
        Assert.Equal((6, 1, 5), (report.Deliveries, report.Redelivered, report.MostDeliveries));
        Assert.Equal(["generator-0.deliveries.jsonl", "generator-1.deliveries.jsonl"], Directory.GetFiles(ledgerDir).Select(Path.GetFileName).Order());
    }

    public void Dispose()
    {
        try { Directory.Delete(ledgerDir, recursive: true); } catch (IOException) { }
    }
}
