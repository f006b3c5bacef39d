using OnlineRl.Messaging;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline.Tests;

// A learner whose every loss is NaN, inside the real pipeline (feeder, generator and scorer as services on the
// in-process bus): it publishes no new weights version, counts the dropped updates, and its crash-safe
// checkpoint holds the untouched, finite weights.
public class NonFiniteLossTests
{
    [Fact]
    public async Task ALearnerWithNaNLossesPublishesNoNewVersionAndCheckpointsFiniteWeights()
    {
        var root = TinySetup.TempDir("nan");
        var keys = TinySetup.Keys();
        keys["train.steps"] = "2";
        keys["train.checkpoint_every"] = "1";
        keys["train.max_policy_lag"] = "100";
        keys["task.max_prompts"] = "8"; // 2 updates x 4 prompts
        keys["train.eval_every"] = "0";
        keys["train.state_dir"] = Path.Combine(root, "state");
        var config = TinySetup.Config(keys);
        // The learner re-scores completions at the sampling temperature; at 1e-45 the logits overflow to infinity
        // and every loss is NaN. The generator samples at the normal temperature.
        var learnerConfig = config with { Sampling = config.Sampling with { Temperature = 1e-45 } };
        await using var bus = new InProcessEventBus();
        var blobs = new InMemoryBlobStore();
        using var stop = new CancellationTokenSource();
        var services = new[]
        {
            Task.Run(() => PipelineServices.RunFeederAsync(config with { Service = new ServiceSection { Id = "feeder" } }, bus, blobs, _ => { }, stop.Token)),
            Task.Run(() => PipelineServices.RunGeneratorAsync(config with { Service = new ServiceSection { Id = "generator-a" } }, bus, blobs,
                new InProcessGeneratorStatus(), _ => { }, stop.Token)),
            Task.Run(() => PipelineServices.RunScorerAsync(config with { Service = new ServiceSection { Id = "scorer-a" } }, bus, _ => { }, stop.Token)),
        };
        try
        {
            var store = PipelineServices.WeightStore(learnerConfig, blobs);
            Dictionary<string, float[]> initialWeights;
            long initialVersion;
            using (var session = LearnerSession.Create(learnerConfig, withGeneratorModel: false, _ => { }))
            {
                initialWeights = TinySetup.Weights(session.Policy);
                initialVersion = (await LearnerWorker.PublishWeightsAsync(store, session.Policy, false, 0, CancellationToken.None)).Version;
                var reports = new List<StepReport>();
                var worker = new LearnerWorker(bus, store, session.Learner, session.Policy, PipelineServices.LearnerWorkerOptions(learnerConfig, "learner-a"),
                    config.RunId, initialVersion, report: reports.Add, stateStore: session.StateStore);
                await worker.RunAsync(CancellationToken.None).WaitAsync(TinySetup.HangLimit);

                Assert.Equal(2, reports.Count);
                Assert.All(reports, r => Assert.True(r.Skipped));
                Assert.All(reports, r => Assert.False(double.IsFinite(r.Metrics["loss"])));
                Assert.Equal(2, session.Learner.NonFiniteUpdates);
                Assert.Equal(initialVersion, worker.Version);
                Assert.Equal(initialVersion, await store.CurrentVersionAsync());
                Assert.Equal(initialWeights, TinySetup.Weights(session.Policy));
            }

            // The checkpoint a restarted learner would resume from: step 2, the initial (finite) weights.
            using var restored = LearnerSession.Create(learnerConfig, withGeneratorModel: false, _ => { });
            var progress = restored.StateStore!.Restore(restored.Policy, restored.Learner);
            Assert.Equal(2, progress!.Step);
            Assert.Equal(2, restored.Learner.NonFiniteUpdates);
            var checkpointed = TinySetup.Weights(restored.Policy);
            Assert.Equal(initialWeights, checkpointed);
            Assert.All(checkpointed.Values, w => Assert.All(w, v => Assert.True(float.IsFinite(v))));
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
