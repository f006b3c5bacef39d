using OnlineRl.Training;

namespace OnlineRl.Pipeline.Tests;

// Crash-safe learner checkpoints: a restored learner continues bit for bit; NaN/inf losses never reach the weights.
public class LearnerCheckpointTests
{
    [Theory]
    [InlineData("grpo")]
    [InlineData("ppo")]
    public void RestoredLearnerMakesTheSameNextUpdateAsAnUninterruptedOne(string algorithm)
    {
        var keys = TinySetup.Keys(algorithm);
        keys["algorithm.minibatches"] = "2";     // minibatch order comes from the learner's random stream
        keys["train.shuffle_rewards"] = "true";  // and so does the reward permutation
        var directory = TinySetup.TempDir("ckpt");
        keys["train.state_dir"] = directory; // the reference policy is kept there too
        var config = TinySetup.Config(keys);
        try
        {
            torch.manual_seed(1);
            using var original = LearnerSession.Create(config, withGeneratorModel: false, _ => { });
            original.Learner.Step(TinySetup.Groups(1));
            original.Learner.Step(TinySetup.Groups(2));
            var store = original.StateStore!;
            var progress = new LearnerProgress(2, 3, original.Learner.Optimizer.StepCount, ["a", "b"], ["c"], 1, 1);
            store.Save(original.Policy, original.Learner, progress);

            torch.manual_seed(99); // a different initialisation, overwritten by the restore
            using var restored = LearnerSession.Create(config, withGeneratorModel: false, _ => { });
            Assert.Equal(TinySetup.Weights(original.Reference), TinySetup.Weights(restored.Reference));
            var back = store.Restore(restored.Policy, restored.Learner)!;
            Assert.Equal(progress with { Trained = [], DroppedStale = [] }, back with { Trained = [], DroppedStale = [] });
            Assert.Equal(progress.Trained, back.Trained);
            Assert.Equal(TinySetup.Weights(original.Policy), TinySetup.Weights(restored.Policy));
            var a = original.Learner.Optimizer.State();
            var b = restored.Learner.Optimizer.State();
            Assert.Equal(a.StepCount, b.StepCount);
            Assert.Equal(a.ParameterSteps, b.ParameterSteps);
            for (var i = 0; i < a.ExpAvg.Count; i++)
            {
                Assert.Equal(a.ExpAvg[i]!.data<float>().ToArray(), b.ExpAvg[i]!.data<float>().ToArray());
                Assert.Equal(a.ExpAvgSq[i]!.data<float>().ToArray(), b.ExpAvgSq[i]!.data<float>().ToArray());
            }
            Assert.Equal(2, restored.Learner.StepCount);

            var next = TinySetup.Groups(3);
            var expected = original.Learner.Step(next);
            var actual = restored.Learner.Step(next);
            Assert.Equal(expected.Metrics["loss"], actual.Metrics["loss"]);
            Assert.Equal(expected.Metrics["learning_rate"], actual.Metrics["learning_rate"]);
            Assert.Equal(TinySetup.Weights(original.Policy), TinySetup.Weights(restored.Policy));
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void HalfWrittenCheckpointIsIgnoredAndOnlyTheNewestFewAreKept()
    {
        var config = TinySetup.Config(TinySetup.Keys());
        var directory = TinySetup.TempDir("ckpt");
        try
        {
            using var session = LearnerSession.Create(config, withGeneratorModel: false, _ => { });
            var store = new LearnerStateStore(directory, keep: 2);
            Assert.Null(store.Latest());
            for (var step = 1; step <= 3; step++)
            {
                session.Learner.Step(TinySetup.Groups(step));
                store.Save(session.Policy, session.Learner, new LearnerProgress(step, step, step, [], [], 0, step));
            }
            // A learner killed while writing its next checkpoint leaves a temporary directory with some files.
            var torn = Path.Combine(directory, ".tmp-4-12345-dead");
            Directory.CreateDirectory(torn);
            File.WriteAllText(Path.Combine(torn, LearnerCheckpoint.InfoFile), "{\"Step\":4");
            Assert.Equal(2, Directory.GetDirectories(directory, "checkpoint-*").Length);
            var progress = store.Restore(session.Policy, session.Learner);
            Assert.Equal(3, progress!.Step);
            Assert.False(Directory.Exists(torn));
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    [Theory]
    [InlineData("rng.learner")]
    [InlineData("rng.global")]
    public void RandomStateOfTheWrongSizeIsRefusedWithTheFileNamed(string entry)
    {
        // libtorch aborts the whole process on a generator state of the wrong size (TorchSharp lets that C++
        // exception escape): a damaged or foreign checkpoint must be an error that names the file instead.
        var config = TinySetup.Config(TinySetup.Keys());
        var directory = TinySetup.TempDir("ckpt");
        try
        {
            using var session = LearnerSession.Create(config, withGeneratorModel: false, _ => { });
            session.Learner.Step(TinySetup.Groups(1));
            var store = new LearnerStateStore(directory, keep: 1);
            var checkpoint = store.Save(session.Policy, session.Learner, new LearnerProgress(1, 1, 1, [], [], 0, 1));
            var statePath = Path.Combine(checkpoint, LearnerCheckpoint.StateFile);
            using (var scope = torch.NewDisposeScope())
            {
                Dictionary<string, Tensor> tensors;
                using (var file = SafeTensorsFile.Open(statePath))
                    tensors = file.Tensors.Keys.ToDictionary(name => name, name => file.Load(name));
                tensors[entry] = tensors[entry].narrow(0, 0, 16).contiguous();
                SafeTensorsFile.Save(statePath, tensors);
            }

            var error = Assert.Throws<InvalidDataException>(() => store.Restore(session.Policy, session.Learner));
            Assert.Contains(statePath, error.Message);
            Assert.Contains(entry, error.Message);
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void StateOfAnotherArchitectureIsRefusedWithTheFileNamed()
    {
        // A run restarted on an old state directory after the model's width changed.
        var directory = TinySetup.TempDir("ckpt");
        var keys = TinySetup.Keys();
        keys["train.state_dir"] = directory;
        try
        {
            using (var session = LearnerSession.Create(TinySetup.Config(keys), withGeneratorModel: false, _ => { }))
            {
                session.Learner.Step(TinySetup.Groups(1));
                session.StateStore!.Save(session.Policy, session.Learner, new LearnerProgress(1, 1, 1, [], [], 0, 1));
            }
            keys["model.hidden_size"] = "48";
            var error = Assert.Throws<InvalidDataException>(() => LearnerSession.Create(TinySetup.Config(keys), withGeneratorModel: false, _ => { }));
            Assert.Contains(Path.Combine(directory, "reference.safetensors"), error.Message);

            File.Delete(Path.Combine(directory, "reference.safetensors"));
            using var wider = LearnerSession.Create(TinySetup.Config(keys), withGeneratorModel: false, _ => { });
            error = Assert.Throws<InvalidDataException>(() => wider.StateStore!.Restore(wider.Policy, wider.Learner));
            Assert.Contains(LearnerCheckpoint.WeightsFile, error.Message);
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void NonFiniteLossSkipsTheUpdateAndIsCounted()
    {
        var config = TinySetup.Config(TinySetup.Keys());
        using var session = LearnerSession.Create(config, withGeneratorModel: false, _ => { });
        var before = TinySetup.Weights(session.Policy);
        var stats = session.Learner.Step(TinySetup.Groups(5, reward: double.NaN));
        Assert.True(stats.Skipped);
        Assert.Equal(1, session.Learner.NonFiniteUpdates);
        Assert.Equal(1, stats.Metrics["nonfinite_updates"]);
        Assert.Equal(0, session.Learner.Optimizer.StepCount);
        Assert.Equal(before, TinySetup.Weights(session.Policy));
        var ok = session.Learner.Step(TinySetup.Groups(6));
        Assert.False(ok.Skipped);
        Assert.NotEqual(before, TinySetup.Weights(session.Policy));
        Assert.All(TinySetup.Weights(session.Policy).Values, w => Assert.All(w, v => Assert.True(float.IsFinite(v))));
    }
}
