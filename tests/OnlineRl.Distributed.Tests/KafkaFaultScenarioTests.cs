using OnlineRl.Contracts;
using Xunit.Abstractions;

namespace OnlineRl.Distributed.Tests;

// One run of separate service processes (feeder, two generators, a scorer, the learner) over librdkafka's mock
// Kafka cluster (three brokers, in the `onlinerl kafka-mock` helper process, broken through its stdin) while the
// run goes on: a broker down and back, a leader change on every partition, produce, fetch and commit errors, a
// generator killed with -9 and a new one joining, a second scorer joining (rebalances while batches are in hand),
// the feeder and then the learner killed with -9 and restarted. The ledger must show every prompt trained exactly
// once and nothing missing, the restarted feeder must continue the numbering, and the generators must end on the
// newest weights.
[Collection(DistributedCollection.Name)]
public sealed class KafkaFaultScenarioTests(SftCheckpointFixture start, ITestOutputHelper output)
{
    private const int Steps = 36;
    private const int PromptsPerStep = 8;
    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromMinutes(4);

    [DistributedFact]
    public async Task Broker_faults_kills_and_rebalances_lose_nothing_and_train_nothing_twice()
    {
        using var redis = RedisServer.Start();
        using var kafka = KafkaMock.StartProcess(start.Cli, brokers: 3, partitions: 4);
        var settings = new Dictionary<string, string>(KafkaMock.FastGroupSettings) { ["fetch.wait.max.ms"] = "10" };
        using var run = new DistributedRun(start, kafka.TransportUri, "redis://" + DistributedRunTests.Host(redis.Address), Steps, PromptsPerStep,
            output, settings, maxPolicyLag: 2);
        var (learner, generators) = run.StartAll("generator-0", "generator-1");
        var step = 0L;
        async Task NextPhaseAsync(ServiceProcess current, int steps)
        {
            step = Math.Max(step, DistributedRun.LatestStep(current)) + steps;
            await DistributedRun.WaitForStepAsync(current, step, PhaseTimeout);
        }
        void Fault(string command)
        {
            Assert.Equal("ok", kafka.Control(command));
            output.WriteLine($"step {step}: {command}");
        }

        // Broker 2 (leader of partition 1 of every topic) goes down for 4 s and comes back.
        await NextPhaseAsync(learner, 3);
        Fault("down 2");
        await Task.Delay(TimeSpan.FromSeconds(4));
        Fault("up 2");

        // A leader election: every partition of every topic moves to another broker.
        await NextPhaseAsync(learner, 2);
        foreach (var topic in Topics.All)
            for (var partition = 0; partition < 4; partition++)
                Fault($"leader {topic} {partition} {(partition + 1) % 3 + 1}");

        // Produce, fetch and commit requests fail (retriable errors and dropped connections).
        await NextPhaseAsync(learner, 2);
        Fault("errors produce NotLeaderForPartition RequestTimedOut NotEnoughReplicas Local_Transport");
        Fault("errors fetch NotLeaderForPartition Local_Transport RequestTimedOut");
        Fault("errors offset_commit NotCoordinatorForGroup RequestTimedOut");

        // A generator dies with prompts in hand; a new one joins: the generators' group rebalances.
        await NextPhaseAsync(learner, 2);
        generators[1].Kill();
        output.WriteLine($"step {step}: killed generator-1, starting generator-2");
        var added = run.Start("generator", "generator-2");

        // A second scorer joins (the scorers' group rebalances mid-batch); the feeder dies and is restarted.
        await NextPhaseAsync(learner, 3);
        run.Start("scorer", "scorer-1");
        var feeder = run.Processes.Single(p => p.Name == "feeder-0");
        feeder.Kill();
        output.WriteLine($"step {step}: started scorer-1, killed the feeder");
        var restartedFeeder = run.Start("feeder", "feeder-0");
        var resumed = await restartedFeeder.WaitForLineAsync(line => line.Contains("resuming at prompt", StringComparison.Ordinal), PhaseTimeout);

        // The learner dies without any cleanup and comes back on the same state directory.
        await NextPhaseAsync(learner, 3);
        learner.Kill();
        output.WriteLine($"step {step}: killed the learner at step {DistributedRun.LatestStep(learner)}");
        var restarted = run.Start("learner", "learner");
        await restarted.WaitForLineAsync(line => line.Contains("resuming from", StringComparison.Ordinal), PhaseTimeout);

        Assert.True(await restarted.WaitForExitAsync(PhaseTimeout * 2), $"the restarted learner did not finish:\n{restarted.Tail()}");
        Assert.Equal(0, restarted.ExitCode);
        Assert.False(added.HasExited, $"generator-2 is not running:\n{added.Tail()}");
        // The kill made generator-0's group hand it new partitions: a rebalance while it was working.
        Assert.Contains(generators[0].Lines, line => line.Contains("revoked partitions", StringComparison.Ordinal));
        output.WriteLine($"restarted feeder: {resumed}");

        var newest = DistributedRun.FinalVersion(restarted);
        var held = await run.WaitForGeneratorsOnAsync(["generator-0", "generator-2"], newest, TimeSpan.FromSeconds(30));
        Assert.All(held, kv => Assert.True(kv.Value == newest, $"{kv.Key} holds v{kv.Value}, the newest is v{newest}"));

        var ledger = await run.FinishAsync();
        Assert.True(ledger.Ok, ledger.ToString());
        Assert.Equal(Steps * PromptsPerStep, ledger.Published);
        Assert.Equal(Steps * PromptsPerStep, ledger.Trained + ledger.DroppedStale);
        Assert.Empty(ledger.TrainedTwice);
        // Every update is full, except a short last one when prompts were dropped as stale (they are not replaced).
        Assert.Equal((ledger.Trained + PromptsPerStep - 1) / PromptsPerStep, DistributedRun.LatestStep(restarted));
        Assert.True(ledger.Redelivered > 0, "no Kafka message was delivered twice: the kills proved nothing");
        // The restarted feeder went on from its predecessor's position: at most the one prompt in flight at the kill
        // was published twice (same id), none was renumbered from 0.
        var resumedAt = long.Parse(System.Text.RegularExpressions.Regex.Match(resumed, @"resuming at prompt (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(resumedAt, 1, Steps * PromptsPerStep);
        var publishedLines = File.ReadLines(Path.Combine(run.LedgerDir, "feeder-0.jsonl")).Count(l => l.Contains("\"published\"", StringComparison.Ordinal));
        Assert.InRange(publishedLines - ledger.Published, 0, 1);
    }
}
