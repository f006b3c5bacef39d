using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace OnlineRl.Distributed.Tests;

// redis-server (the bus and the weight store of a distributed run) killed with SIGKILL at two exact points, found
// by watching its MONITOR stream: half way through the learner's publication of a weight version (chunks written,
// no manifest, no pointer yet), and in the middle of the learner's acknowledgements after a checkpoint. With the
// append-only file on, the run must resume and finish with every prompt trained exactly once, and no generator may
// ever load (or refuse) a partial version: each generator's rejected-versions counter stays 0 and both end on the
// newest version.
[Collection(DistributedCollection.Name)]
public sealed partial class RedisFaultScenarioTests(SftCheckpointFixture start, ITestOutputHelper output)
{
    private const int Steps = 24;
    private const int PromptsPerStep = 8;
    private const int MidTensor = 12; // of the policy's 30 tensors
    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromMinutes(4);

    [DistributedFact]
    public async Task Redis_killed_mid_publication_and_mid_acknowledgement_loses_nothing_and_no_generator_loads_a_partial_version()
    {
        using var redis = RedisServer.Start();
        var address = "redis://" + DistributedRunTests.Host(redis.Address);
        using var run = new DistributedRun(start, address, address, Steps, PromptsPerStep, output, maxPolicyLag: 2);
        var (learner, generators) = run.StartAll("generator-0", "generator-1");

        // Half a weight version written: the kill comes at a chunk of a middle tensor.
        await DistributedRun.WaitForStepAsync(learner, 4, PhaseTimeout);
        long partialVersion;
        using (var monitor = RedisMonitor.KillWhen(redis, line => ChunkWrite().Match(line) is { Success: true } m && int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) >= MidTensor))
        {
            var killedAt = await monitor.Killed.WaitAsync(PhaseTimeout) ?? throw new InvalidOperationException("the MONITOR stream ended before the kill");
            partialVersion = long.Parse(ChunkWrite().Match(killedAt).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.DoesNotContain(monitor.Seen, line => line.Contains($":v{partialVersion}:manifest\"", StringComparison.Ordinal));
            output.WriteLine($"killed redis-server at learner step {DistributedRun.LatestStep(learner)} while v{partialVersion} was half written: {killedAt[..Math.Min(killedAt.Length, 160)]}");
        }
        redis.Restart(); // from the append-only file

        // In the middle of a commit's acknowledgements (the learner acknowledges a step's groups one by one).
        await DistributedRun.WaitForStepAsync(learner, DistributedRun.LatestStep(learner) + 3, PhaseTimeout);
        using (var monitor = RedisMonitor.KillWhen(redis, line => line.Contains("\"XACK\"", StringComparison.Ordinal) && line.Contains(":stream:scored\" \"learner\"", StringComparison.Ordinal)))
        {
            var killedAt = await monitor.Killed.WaitAsync(PhaseTimeout) ?? throw new InvalidOperationException("the MONITOR stream ended before the kill");
            output.WriteLine($"killed redis-server at learner step {DistributedRun.LatestStep(learner)} while acknowledging: {killedAt}");
        }
        redis.Restart();

        Assert.True(await learner.WaitForExitAsync(PhaseTimeout * 2), $"the learner did not finish:\n{learner.Tail()}");
        Assert.Equal(0, learner.ExitCode);
        var newest = DistributedRun.FinalVersion(learner);
        Assert.True(newest > partialVersion, $"the final version v{newest} is not above the half-written v{partialVersion}");
        var held = await run.WaitForGeneratorsOnAsync(generators.Select(g => g.Name), newest, TimeSpan.FromSeconds(30));
        Assert.All(held, kv => Assert.True(kv.Value == newest, $"{kv.Key} holds v{kv.Value}, the newest is v{newest}"));
        foreach (var generator in generators)
            Assert.Equal((double?)0, await run.GeneratorMetricAsync(generator.Name, "onlinerl_generator_weights_rejected_total"));

        var ledger = await run.FinishAsync();
        Assert.True(ledger.Ok, ledger.ToString());
        Assert.Equal(Steps * PromptsPerStep, ledger.Published);
        Assert.Equal(Steps * PromptsPerStep, ledger.Trained + ledger.DroppedStale);
        Assert.Empty(ledger.TrainedTwice);
        Assert.Equal((ledger.Trained + PromptsPerStep - 1) / PromptsPerStep, DistributedRun.LatestStep(learner));
    }

    /// <summary>A MONITOR line writing a weight chunk: groups 1 version, 2 tensor index.</summary>
    [GeneratedRegex("""
        "SET" "[^"]*:weights:v(\d+):t(\d+):c\d+"
        """)]
    private static partial Regex ChunkWrite();
}
