using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Rewards;
using OnlineRl.Tokenizers;

namespace OnlineRl.Pipeline.Tests;

// The feeder's admission control on the in-process bus, with the test playing generator and learner.
public class FeederWorkerTests
{
    [Fact]
    public async Task PromptsAdmittedByAnAnnouncementMustBeSampledWithThatVersion()
    {
        const string runId = "feeder-test";
        await using var bus = new InProcessEventBus();
        var prompts = bus.Subscribe(Topics.Prompts, "generators", "test-generator");
        var feeder = new FeederWorker(bus, TaskSource.Create(new TaskSection { EvalSize = 0 }, seed: 1), new CharTokenizer(AdditionTask.Alphabet), runId,
            inFlightLimit: 2);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var running = feeder.RunAsync(stop.Token);

        async Task<PromptMessage> NextAsync()
        {
            var message = await prompts.ReceiveAsync(stop.Token);
            await prompts.AckAsync(message, stop.Token);
            return MessageCodec.Default.Decode<PromptMessage>(message.Payload.Span).Value!;
        }

        Assert.Equal(new long[] { 0, 0 }, new[] { (await NextAsync()).MinPolicyVersion, (await NextAsync()).MinPolicyVersion });
        // The learner retired both prompts and announced version 3. A limit of two prompts in flight
        // (two steps of one prompt: lag 1) means the next two are trained on while the learner holds
        // version 3 or 4, so sampling them with version 2 would already be two versions stale.
        var announcement = new PolicyVersion { Version = 3, Step = 3, ManifestLocation = "weights:v3", RetiredPrompts = 2 };
        await new Publisher(bus).PublishAsync(Topics.Policy, announcement.Stamp(runId), cancellationToken: stop.Token);
        var admitted = new[] { await NextAsync(), await NextAsync() };
        Assert.Equal(new long[] { 3, 3 }, admitted.Select(p => p.MinPolicyVersion));
        Assert.Equal(new long[] { 2, 3 }, admitted.Select(p => p.DatasetIndex));
        Assert.Equal(4, feeder.Published);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [Fact]
    public async Task AnUndecodableAnnouncementIsDeadLetteredAndTheFeederKeepsAdmitting()
    {
        const string runId = "feeder-dead-letter";
        await using var bus = new InProcessEventBus();
        var prompts = bus.Subscribe(Topics.Prompts, "generators", "test-generator");
        var deadLetters = bus.Subscribe(Topics.DeadLetter, "test-audit", "test-audit");
        var feeder = new FeederWorker(bus, TaskSource.Create(new TaskSection { EvalSize = 0 }, seed: 1), new CharTokenizer(AdditionTask.Alphabet), runId,
            inFlightLimit: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var running = feeder.RunAsync(stop.Token);
        var first = await prompts.ReceiveAsync(stop.Token);
        await prompts.AckAsync(first, stop.Token);

        await bus.PublishAsync(Topics.Policy, "garbage", new byte[] { 0xff, 0x01, 0x02 }, cancellationToken: stop.Token);
        var letter = await deadLetters.ReceiveAsync(stop.Token);
        var dead = MessageCodec.Default.Decode<DeadLetter>(letter.Payload.Span).Value!;
        Assert.Equal(Topics.Policy, dead.OriginalTopic);
        Assert.Equal("feeder", dead.ServiceId);
        Assert.NotEmpty(dead.Reason);
        Assert.Equal(1, feeder.Published);

        var announcement = new PolicyVersion { Version = 1, Step = 1, ManifestLocation = "weights:v1", RetiredPrompts = 1 };
        await new Publisher(bus).PublishAsync(Topics.Policy, announcement.Stamp(runId), cancellationToken: stop.Token);
        var second = MessageCodec.Default.Decode<PromptMessage>((await prompts.ReceiveAsync(stop.Token)).Payload.Span).Value!;
        Assert.Equal(1, second.DatasetIndex);
        Assert.Equal(1, second.MinPolicyVersion);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [Fact]
    public async Task ARestartedFeederContinuesTheNumberingAndTheAdmissionsOfItsPredecessor()
    {
        const string runId = "feeder-restart-test";
        await using var bus = new InProcessEventBus();
        var prompts = bus.Subscribe(Topics.Prompts, "generators", "test-generator");
        var positions = new OnlineRl.Weights.InMemoryBlobStore();
        FeederWorker NewFeeder() => new(bus, TaskSource.Create(new TaskSection { EvalSize = 0 }, seed: 1), new CharTokenizer(AdditionTask.Alphabet), runId,
            inFlightLimit: 2, cursor: new FeederCursor(positions, "position"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        async Task<PromptMessage> NextAsync()
        {
            var message = await prompts.ReceiveAsync(timeout.Token);
            await prompts.AckAsync(message, timeout.Token);
            return MessageCodec.Default.Decode<PromptMessage>(message.Payload.Span).Value!;
        }

        using (var firstStop = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token))
        {
            var first = NewFeeder().RunAsync(firstStop.Token);
            Assert.Equal(new long[] { 0, 1 }, new[] { (await NextAsync()).DatasetIndex, (await NextAsync()).DatasetIndex });
            var announcement = new PolicyVersion { Version = 2, Step = 1, ManifestLocation = "weights:v2", RetiredPrompts = 1 };
            await new Publisher(bus).PublishAsync(Topics.Policy, announcement.Stamp(runId), cancellationToken: timeout.Token);
            Assert.Equal(2, (await NextAsync()).DatasetIndex);
            await firstStop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        }

        // The successor starts at prompt 3 with its predecessor's admissions (1 retired, 2 in flight: no room yet)
        // and announced version, and admits more as soon as the learner retires some.
        var successor = NewFeeder();
        var running = successor.RunAsync(timeout.Token);
        await Task.Delay(300);
        Assert.Equal(3, successor.Published);
        var later = new PolicyVersion { Version = 3, Step = 2, ManifestLocation = "weights:v3", RetiredPrompts = 3 };
        await new Publisher(bus).PublishAsync(Topics.Policy, later.Stamp(runId), cancellationToken: timeout.Token);
        var admitted = new[] { await NextAsync(), await NextAsync() };
        Assert.Equal(new long[] { 3, 4 }, admitted.Select(p => p.DatasetIndex));
        Assert.Equal(new[] { "#3", "#4" }, admitted.Select(p => p.PromptId[p.PromptId.IndexOf('#')..]));
        Assert.All(admitted, p => Assert.Equal(3, p.MinPolicyVersion));
        await timeout.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }
}
