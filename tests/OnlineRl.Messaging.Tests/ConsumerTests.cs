using System.Diagnostics.Metrics;
using Google.Protobuf;

namespace OnlineRl.Messaging.Tests;

public class ConsumerTests
{
    private static readonly byte[] Garbage = [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02];

    /// <summary>Runs a consumer until the handler has seen <paramref name="count"/> messages, then stops it.</summary>
    private static async Task<List<T>> RunUntil<T>(Consumer<T> consumer, int count, Func<T, ValueTask>? onMessage = null)
        where T : class, IMessage<T>, IContractMessage, new()
    {
        var handled = new List<T>();
        var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var run = consumer.RunAsync(async (m, _, _) =>
        {
            if (onMessage is not null) await onMessage(m);
            handled.Add(m);
            if (handled.Count == count) enough.TrySetResult();
        }, stop.Token);
        await Task.WhenAny(enough.Task, run).Guarded();
        if (run.IsFaulted) await run; // surface the loop's exception
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run).Guarded();
        return handled;
    }

    private static async Task<DeadLetter> ReadDeadLetter(IEventBus bus, string group = "inspector")
    {
        await using var sub = bus.Subscribe(Topics.DeadLetter, group, "inspector-0");
        var m = await sub.ReceiveAsync().Guarded();
        var r = MessageCodec.Default.Decode<DeadLetter>(m.Payload.Span);
        Assert.True(r.Ok, r.Error);
        Assert.Equal(MessageCodec.MessageTypeOf(r.Value), m.Headers[MessageHeaders.MessageType]);
        await sub.AckAsync(m).Guarded();
        return r.Value;
    }

    [Fact]
    public async Task Garbage_goes_to_the_dead_letter_topic_with_the_reason_and_the_next_good_message_is_processed()
    {
        await using var bus = new InProcessEventBus();
        var publisher = new Publisher(bus);
        await bus.PublishAsync(Topics.Prompts, "bad-key", Garbage).Guarded();
        var good = Samples.Prompt();
        await publisher.PublishAsync(Topics.Prompts, good, good.PromptId).Guarded();

        var consumer = new Consumer<PromptMessage>(bus, Topics.Prompts, "generator", "generator-0",
            new ConsumerOptions { ServiceId = "generator-0", Stage = "generate", RunId = "run-fallback" });
        var handled = await RunUntil(consumer, 1);
        Assert.Equal(good, Assert.Single(handled));

        var letter = await ReadDeadLetter(bus);
        var expectedReason = MessageCodec.Default.Decode<PromptMessage>(Garbage).Error;
        Assert.Equal(expectedReason, letter.Reason);
        Assert.StartsWith("payload: not a valid onlinerl.v1.PromptMessage", letter.Reason, StringComparison.Ordinal);
        Assert.Equal(Garbage, letter.Payload.ToByteArray());
        Assert.Equal(Topics.Prompts, letter.OriginalTopic);
        Assert.Equal("bad-key", letter.Key);
        Assert.Equal("generator-0", letter.ServiceId);
        Assert.Equal("generate", letter.Stage);
        Assert.Equal("run-fallback", letter.RunId); // the garbage had no run-id header
        Assert.Equal("0", letter.OriginalId);
        Assert.Equal(1, letter.DeliveryCount);
        Assert.Equal(0, bus.Lag(Topics.Prompts, "generator")); // both acknowledged
    }

    [Fact]
    public async Task An_invalid_message_is_dead_lettered_with_the_field_named()
    {
        await using var bus = new InProcessEventBus();
        var bad = Samples.Rollout();
        bad.Completions[0].Logprobs.RemoveAt(0);
        var headers = Publisher.HeadersFor(bad);
        await bus.PublishAsync(Topics.Rollouts, "p1", bad.ToByteArray(), headers).Guarded();
        await new Publisher(bus).PublishAsync(Topics.Rollouts, Samples.Rollout()).Guarded();

        var handled = await RunUntil(new Consumer<RolloutGroup>(bus, Topics.Rollouts, "scorer", "scorer-0"), 1);
        Assert.Single(handled);
        var letter = await ReadDeadLetter(bus);
        Assert.Equal("completions[0].logprobs: 2 values for 3 tokens", letter.Reason);
        Assert.Equal(Samples.RunId, letter.RunId); // from the run-id header
        Assert.Equal("scorer", letter.Stage); // defaults to the group
        Assert.Equal(bad.MessageId, letter.OriginalHeaders[MessageHeaders.MessageId]);
        Assert.Equal(bad.ToByteArray(), letter.Payload.ToByteArray());
    }

    [Fact]
    public async Task A_message_of_another_type_is_dead_lettered()
    {
        await using var bus = new InProcessEventBus();
        var prompt = Samples.Prompt();
        await bus.PublishAsync(Topics.Scored, "k", MessageCodec.Default.Encode(prompt), Publisher.HeadersFor(prompt)).Guarded();
        await new Publisher(bus).PublishAsync(Topics.Scored, Samples.Scored()).Guarded();
        var handled = await RunUntil(new Consumer<ScoredGroup>(bus, Topics.Scored, "learner", "learner-0"), 1);
        Assert.Single(handled);
        var letter = await ReadDeadLetter(bus);
        Assert.Equal("message-type: expected onlinerl.v1.ScoredGroup, got onlinerl.v1.PromptMessage", letter.Reason);
    }

    [Fact]
    public async Task A_failing_handler_is_retried_then_the_message_is_dead_lettered()
    {
        await using var bus = new InProcessEventBus();
        var publisher = new Publisher(bus);
        var poison = Samples.Prompt();
        poison.PromptId = "poison";
        await publisher.PublishAsync(Topics.Prompts, poison).Guarded();
        await publisher.PublishAsync(Topics.Prompts, Samples.Prompt()).Guarded();
        var attempts = 0;
        var consumer = new Consumer<PromptMessage>(bus, Topics.Prompts, "g", "c", new ConsumerOptions { MaxDeliveryAttempts = 3 });
        var handled = await RunUntil(consumer, 1, m =>
        {
            if (m.PromptId == "poison")
            {
                attempts++;
                throw new InvalidOperationException("boom");
            }
            return ValueTask.CompletedTask;
        });
        Assert.Equal("gsm8k-train-17", Assert.Single(handled).PromptId);
        Assert.Equal(3, attempts);
        var letter = await ReadDeadLetter(bus);
        Assert.Equal("handler: InvalidOperationException: boom (failed on delivery 3 of 3)", letter.Reason);
        Assert.Equal(3, letter.DeliveryCount);
        Assert.Equal(0, bus.Lag(Topics.Prompts, "g"));
    }

    [Fact]
    public async Task A_message_delivered_too_often_is_dead_lettered_without_running_the_handler()
    {
        await using var bus = new InProcessEventBus();
        await new Publisher(bus).PublishAsync(Topics.Prompts, Samples.Prompt()).Guarded();
        // Simulate consumers that died while handling it.
        for (var i = 0; i < 2; i++)
        {
            var dying = bus.Subscribe(Topics.Prompts, "g", "c");
            await dying.ReceiveAsync().Guarded();
            await dying.DisposeAsync();
        }
        var consumer = new Consumer<PromptMessage>(bus, Topics.Prompts, "g", "c", new ConsumerOptions { MaxDeliveryAttempts = 2 });
        await using var sub = bus.Subscribe(Topics.Prompts, "g", "c2");
        var m = await sub.ReceiveAsync().Guarded();
        Assert.Equal(3, m.DeliveryCount);
        var outcome = await consumer.ProcessAsync(sub, m, (_, _, _) => throw new InvalidOperationException("not called"), CancellationToken.None).Guarded();
        Assert.Equal(ConsumeOutcome.DeadLettered, outcome);
        Assert.StartsWith("delivery_count: delivered 3 times", (await ReadDeadLetter(bus)).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stopping_during_the_handler_gives_the_message_back()
    {
        await using var bus = new InProcessEventBus();
        await new Publisher(bus).PublishAsync(Topics.Prompts, Samples.Prompt()).Guarded();
        var consumer = new Consumer<PromptMessage>(bus, Topics.Prompts, "g", "c");
        using var stop = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = consumer.RunAsync(async (_, _, ct) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }, stop.Token);
        await started.Task.Guarded();
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run).Guarded();
        await using var next = bus.Subscribe(Topics.Prompts, "g", "c");
        var m = await next.ReceiveAsync().Guarded();
        Assert.Equal(2, m.DeliveryCount);
    }

    [Fact]
    public async Task An_oversized_message_is_dead_lettered_with_its_payload_cut_to_fit()
    {
        await using var bus = new InProcessEventBus();
        var codec = new MessageCodec(new MessageCodecOptions { MaxPayloadBytes = 2000 });
        var big = Samples.PolicyInline(); // about 4 KiB
        var bytes = MessageCodec.Default.Encode(big);
        await bus.PublishAsync(Topics.Policy, "v4", bytes, Publisher.HeadersFor(big)).Guarded();
        var consumer = new Consumer<PolicyVersion>(bus, Topics.Policy, "generator-0", "generator-0", new ConsumerOptions { Codec = codec });
        await using var sub = bus.Subscribe(Topics.Policy, "generator-0", "probe");
        var outcome = await consumer.ProcessAsync(sub, await sub.ReceiveAsync().Guarded(), (_, _, _) => ValueTask.CompletedTask, CancellationToken.None).Guarded();
        Assert.Equal(ConsumeOutcome.DeadLettered, outcome);
        var letter = await ReadDeadLetter(bus);
        Assert.StartsWith($"payload: {bytes.Length} bytes exceeds the limit of 2000 bytes (dead-letter payload cut to the first 1000 of {bytes.Length} bytes)", letter.Reason, StringComparison.Ordinal);
        Assert.Equal(bytes.AsSpan(0, 1000).ToArray(), letter.Payload.ToByteArray());
    }

    [Fact]
    public async Task Publisher_writes_the_standard_headers_and_refuses_bad_messages()
    {
        await using var bus = new InProcessEventBus();
        await using var sub = bus.Subscribe(Topics.Rollouts, "g", "c");
        var publisher = new Publisher(bus);
        var rollout = Samples.Rollout();
        var id = await publisher.PublishAsync(Topics.Rollouts, rollout, extraHeaders: new Dictionary<string, string>
        {
            ["trace-id"] = "abc",
            [MessageHeaders.RunId] = "cannot-override",
        }).Guarded();
        var m = await sub.ReceiveAsync().Guarded();
        Assert.Equal(id, m.Id);
        Assert.Equal(rollout.MessageId, m.Key);
        Assert.Equal("1", m.Headers[MessageHeaders.SchemaVersion]);
        Assert.Equal("onlinerl.v1.RolloutGroup", m.Headers[MessageHeaders.MessageType]);
        Assert.Equal(Samples.RunId, m.Headers[MessageHeaders.RunId]);
        Assert.Equal(rollout.MessageId, m.Headers[MessageHeaders.MessageId]);
        Assert.Equal("abc", m.Headers["trace-id"]);

        await Assert.ThrowsAsync<ArgumentException>(() => publisher.PublishAsync(Topics.Prompts, rollout).AsTask());
        var invalid = Samples.Rollout();
        invalid.GeneratorId = "";
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => publisher.PublishAsync(Topics.Rollouts, invalid).AsTask());
        Assert.Contains("generator_id: empty", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, bus.Lag(Topics.Prompts, "g") ?? 0);
        // Topics outside Topics.All accept any contract message.
        await publisher.PublishAsync("custom", Samples.Prompt()).Guarded();
    }

    [Fact]
    public async Task Metrics_count_published_consumed_and_dead_lettered_messages()
    {
        using var metrics = new MessagingMetrics();
        var measurements = new List<(string Instrument, long Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter)) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (measurements)
                measurements.Add((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        });
        listener.Start();

        Assert.Equal("OnlineRl.Messaging", metrics.Meter.Name);
        await using var bus = new InProcessEventBus();
        var publisher = new Publisher(bus, metrics: metrics);
        await bus.PublishAsync(Topics.Prompts, "bad", Garbage).Guarded();
        await publisher.PublishAsync(Topics.Prompts, Samples.Prompt()).Guarded();
        await RunUntil(new Consumer<PromptMessage>(bus, Topics.Prompts, "gen", "gen-0", metrics: metrics), 1);

        long Sum(string name, string tag, string value)
        {
            lock (measurements)
                return measurements.Where(m => m.Instrument == name && Equals(m.Tags.GetValueOrDefault(tag), value)).Sum(m => m.Value);
        }
        Assert.Equal(1, Sum("onlinerl.messaging.published", "topic", Topics.Prompts));
        Assert.Equal(1, Sum("onlinerl.messaging.published", "topic", Topics.DeadLetter));
        Assert.True(Sum("onlinerl.messaging.published.size", "topic", Topics.Prompts) > 0);
        Assert.Equal(1, Sum("onlinerl.messaging.consumed", "group", "gen"));
        Assert.Equal(1, Sum("onlinerl.messaging.dead_letters", "reason", DeadLetterReasons.Malformed));
        foreach (var instrument in new[] { "onlinerl.messaging.published", "onlinerl.messaging.consumed", "onlinerl.messaging.dead_letters" })
            Assert.Contains(measurements, m => m.Instrument == instrument);
    }
}
