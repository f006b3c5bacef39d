using Xunit.Abstractions;

namespace OnlineRl.Distributed.Tests;

// Feeder, two generators, a scorer and the learner as separate OS processes. Strict alternation (no policy lag)
// and a fixed number of prompts (steps x prompts per step), so the ledger must show each prompt trained exactly once.
// Over both transports the run is long enough to learn: 300 GRPO updates of 32 prompts x 8 at lr 1e-4 with two
// epochs per batch on the groups whose rewards differ, as in the in-process proof-of-learning test. Measured so:
// Redis 30.0% -> 38.3%, 38.0%; Kafka 30.0% -> 41.0%, 40.7% (two epochs on all groups: 42.3%, 44.3%; one epoch,
// Redis: 34.7%, 35.3%). Asked for +3 points and a higher mean reward over the last tenth of the updates than over
// the first. Shorter runs do not move held-out accuracy reliably (40 updates: 29.0% -> 23.3..31.7%).
[Collection(DistributedCollection.Name)]
public sealed class DistributedRunTests(SftCheckpointFixture start, ITestOutputHelper output)
{
    private const int Steps = 300;
    private const int PromptsPerStep = 32;
    private const double RequiredGain = 0.03;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(20);

    [DistributedFact]
    public async Task Separate_processes_over_redis_streams_learn_and_train_every_prompt_once()
    {
        using var redis = RedisServer.Start();
        using var run = new DistributedRun(start, "redis://" + Host(redis.Address), "redis://" + Host(redis.Address), Steps, PromptsPerStep, output);
        await RunCleanAsync(run);
    }

    [DistributedFact]
    public async Task Separate_processes_over_kafka_learn_and_train_every_prompt_once()
    {
        using var redis = RedisServer.Start();
        using var kafka = KafkaMock.StartProcess(start.Cli, brokers: 1, partitions: 4);
        // The mock broker holds an empty fetch for all of fetch.wait.max.ms (500 ms by default) even when data arrives;
        // a real broker answers at once. 10 ms keeps each hop quick here.
        var settings = new Dictionary<string, string>(KafkaMock.FastGroupSettings) { ["fetch.wait.max.ms"] = "10" };
        using var run = new DistributedRun(start, kafka.TransportUri, "redis://" + Host(redis.Address), Steps, PromptsPerStep, output, settings);
        await RunCleanAsync(run);
    }

    private async Task RunCleanAsync(DistributedRun run)
    {
        var (learner, generators) = run.StartAll("generator-0", "generator-1");
        Assert.True(await learner.WaitForExitAsync(RunTimeout), $"the learner did not finish {run.Steps} steps in {RunTimeout.TotalMinutes} min:\n{learner.Tail()}");
        Assert.Equal(0, learner.ExitCode);

        var before = DistributedRun.Accuracy(learner, "before RL");
        var after = DistributedRun.Accuracy(learner, "after RL");
        var rewards = DistributedRun.Rewards([learner]);
        var quarter = Math.Max(1, rewards.Count / 4);
        output.WriteLine($"held-out {before:P1} -> {after:P1}; mean reward {rewards.Take(quarter).Average():F3} -> {rewards.TakeLast(quarter).Average():F3}");
        Assert.Equal(run.Steps, rewards.Count);
        var kl = DistributedRun.Kls([learner]);
        Assert.All(kl, value => Assert.True(double.IsFinite(value), "a learner step reported a non-finite KL"));
        Assert.True(kl.TakeLast(quarter).Average() > 0, "the policy never moved away from the reference");
        Assert.True(after >= before + RequiredGain, $"the policy did not improve by {RequiredGain:P0}: {before:P1} -> {after:P1}");
        var tenth = rewards.Count / 10;
        Assert.True(rewards.TakeLast(tenth).Average() > rewards.Take(tenth).Average(), "the mean reward did not rise");

        var newest = DistributedRun.FinalVersion(learner);
        var held = await run.WaitForGeneratorsOnAsync(generators.Select(g => g.Name), newest, TimeSpan.FromSeconds(30));
        Assert.All(held, kv => Assert.True(kv.Value == newest, $"{kv.Key} holds v{kv.Value}, the newest is v{newest}"));

        var ledger = await run.FinishAsync();
        Assert.True(ledger.Ok, ledger.ToString());
        Assert.Equal(run.Steps * run.PromptsPerStep, ledger.Published);
        Assert.Equal(run.Steps * run.PromptsPerStep, ledger.Trained + ledger.DroppedStale);
        Assert.Empty(ledger.TrainedTwice);
    }

    /// <summary>"redis://127.0.0.1:PORT" or "127.0.0.1:PORT" to "127.0.0.1:PORT".</summary>
    internal static string Host(string address) => address.Contains("://", StringComparison.Ordinal) ? address[(address.IndexOf("://", StringComparison.Ordinal) + 3)..] : address;
}
