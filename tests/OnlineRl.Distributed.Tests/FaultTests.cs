using Xunit.Abstractions;

namespace OnlineRl.Distributed.Tests;

// Faults during a distributed run over Redis Streams: a generator killed (kill -9) mid-run and another added,
// the learner killed (kill -9) and restarted from its checkpoint, redis-server restarted. The run must still
// finish every step, and the ledger must show every prompt trained exactly once: nothing lost, nothing twice.
[Collection(DistributedCollection.Name)]
public sealed class FaultTests(SftCheckpointFixture start, ITestOutputHelper output)
{
    private const int Steps = 24;
    private const int PromptsPerStep = 8;
    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromMinutes(6);

    [DistributedFact]
    public async Task Killed_learner_and_generator_and_a_redis_restart_lose_nothing_and_train_nothing_twice()
    {
        using var redis = RedisServer.Start();
        var address = "redis://" + DistributedRunTests.Host(redis.Address);
        // Overlapped with lag 2: a learner killed between publishing a version and checkpointing it republishes its
        // restored weights as a newer version, and the samples in flight must stay usable (not dropped as stale).
        using var run = new DistributedRun(start, address, address, Steps, PromptsPerStep, output, maxPolicyLag: 2);
        var (learner, generators) = run.StartAll("generator-0", "generator-1");

        // A generator dies mid-run (its unacknowledged prompts go back to the group); another joins.
        await DistributedRun.WaitForStepAsync(learner, 3, PhaseTimeout);
        generators[1].Kill();
        output.WriteLine($"killed generator-1 at learner step {DistributedRun.LatestStep(learner)}");
        var added = run.Start("generator", "generator-2");

        // The learner dies without any cleanup and comes back on the same state directory.
        await DistributedRun.WaitForStepAsync(learner, 8, PhaseTimeout);
        learner.Kill();
        var killedAt = DistributedRun.LatestStep(learner);
        output.WriteLine($"killed the learner at step {killedAt}");
        var restarted = run.Start("learner", "learner");
        await restarted.WaitForLineAsync(line => line.Contains("resuming from", StringComparison.Ordinal), PhaseTimeout);

        // Redis goes away and comes back (append-only file: the streams and weights survive).
        await DistributedRun.WaitForStepAsync(restarted, killedAt + 4, PhaseTimeout);
        redis.Restart();
        output.WriteLine($"restarted redis-server at step {DistributedRun.LatestStep(restarted)}");

        Assert.True(await restarted.WaitForExitAsync(PhaseTimeout * 2), $"the restarted learner did not finish:\n{restarted.Tail()}");
        Assert.Equal(0, restarted.ExitCode);
        Assert.True(added.Lines.Count > 0 && !added.HasExited, $"generator-2 is not running:\n{added.Tail()}");

        var newest = DistributedRun.FinalVersion(restarted);
        var live = new[] { "generator-0", "generator-2" };
        var held = await run.WaitForGeneratorsOnAsync(live, newest, TimeSpan.FromSeconds(30));
        Assert.All(held, kv => Assert.True(kv.Value == newest, $"{kv.Key} holds v{kv.Value}, the newest is v{newest}"));

        var ledger = await run.FinishAsync();
        Assert.True(ledger.Ok, ledger.ToString());
        Assert.Equal(Steps * PromptsPerStep, ledger.Published);
        Assert.Equal(Steps * PromptsPerStep, ledger.Trained + ledger.DroppedStale);
        Assert.Empty(ledger.TrainedTwice);
        // Every update is full, except a short last one when prompts were dropped as stale (they are not replaced).
        Assert.Equal((ledger.Trained + PromptsPerStep - 1) / PromptsPerStep, DistributedRun.LatestStep(restarted));
        var addedLedger = Path.Combine(run.LedgerDir, "generator-2.jsonl");
        Assert.True(File.Exists(addedLedger) && File.ReadLines(addedLedger).Any(l => l.Contains("\"generated\"", StringComparison.Ordinal)),
            "the generator added mid-run took no prompts");
    }
}
