using OnlineRl.Messaging;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline.Tests;

// A learner abandoned at a random step (as if killed: no graceful stop, nothing acknowledged beyond its last
// checkpoint) and restarted from its state directory over the same bus finishes the run; the ledger shows every
// prompt trained exactly once. Feeder, generator and scorer run as the service entry points do.
public class CrashRestartTests
{
    private sealed class SimulatedKill : Exception;

    [Fact]
    public async Task LearnerKilledAtARandomStepResumesWithoutLosingOrRepeatingSamples()
    {
        var root = TinySetup.TempDir("crash");
        var killAt = 1 + Random.Shared.Next(7); // after update 1..7 of 8; checkpoints every 2 updates
        var keys = TinySetup.Keys();
        keys["train.steps"] = "8";
        keys["train.checkpoint_every"] = "2";
        keys["train.max_policy_lag"] = "100"; // nothing dropped: every published prompt must be trained
        keys["task.max_prompts"] = "32";      // 8 updates x 4 prompts
        keys["train.eval_every"] = "0";
        keys["train.state_dir"] = Path.Combine(root, "state");
        keys["train.ledger_dir"] = Path.Combine(root, "ledger");
        var config = TinySetup.Config(keys);
        await using var bus = new InProcessEventBus();
        var blobs = new InMemoryBlobStore();
        var status = new InProcessGeneratorStatus();
        using var stop = new CancellationTokenSource();
        var services = new[]
        {
            Task.Run(() => PipelineServices.RunFeederAsync(config with { Service = new ServiceSection { Id = "feeder" } }, bus, blobs, _ => { }, stop.Token)),
            Task.Run(() => PipelineServices.RunGeneratorAsync(config with { Service = new ServiceSection { Id = "generator-a" } }, bus, blobs, status, _ => { }, stop.Token)),
            Task.Run(() => PipelineServices.RunScorerAsync(config with { Service = new ServiceSection { Id = "scorer-a" } }, bus, _ => { }, stop.Token)),
        };
        try
        {
            long versionAtKill;
            var store = PipelineServices.WeightStore(config, blobs);
            using (var first = LearnerSession.Create(config, withGeneratorModel: false, _ => { }))
            using (var ledger = PipelineServices.Ledger(config, "learner-a"))
            {
                var initial = await LearnerWorker.PublishWeightsAsync(store, first.Policy, false, 0, CancellationToken.None);
                var worker = new LearnerWorker(bus, store, first.Learner, first.Policy, PipelineServices.LearnerOptions(config, "learner-a"), config.RunId,
                    initial.Version, report: r => { if (r.Step == killAt) throw new SimulatedKill(); }, stateStore: first.StateStore, ledger: ledger);
                await Assert.ThrowsAsync<SimulatedKill>(() => worker.RunAsync(CancellationToken.None).WaitAsync(TinySetup.HangLimit));
                versionAtKill = worker.Version;
            }

            var second = await PipelineServices.RunLearnerAsync(config with { Service = new ServiceSection { Id = "learner-b" } }, bus, blobs, _ => { }, CancellationToken.None).WaitAsync(TinySetup.HangLimit); // a lost sample would leave it waiting forever
            Assert.Equal(killAt - killAt % 2, second.RestoredStep);
            Assert.True(second.Version > versionAtKill, $"versions must stay monotonic: v{second.Version} after v{versionAtKill}");
            Assert.Equal(32, second.TrainedPrompts.Count);
            Assert.Equal(32, second.TrainedPrompts.Distinct().Count());

            var report = Ledger.Verify(Path.Combine(root, "ledger"));
            Assert.True(report.Ok, report.ToString());
            Assert.Equal(32, report.Published);
            Assert.Equal(32, report.Trained);
            Assert.Equal(0, report.DroppedStale);
            Assert.Equal(killAt % 2 * 4, report.Uncommitted); // the lost update's groups, trained again after the restart
            Assert.True(status.HeldVersions["generator-a"] >= 1, "the generator reported the weights it sampled with");
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var service in services)
            {
                try { await service; }
                catch (OperationCanceledException) { }
                catch (ObjectDisposedException) { }
            }
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
