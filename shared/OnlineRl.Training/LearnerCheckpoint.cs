using System.Runtime.InteropServices;
using System.Text.Json;
using OnlineRl.Model;

namespace OnlineRl.Training;

/// <summary>
/// Writes and reads everything a learner needs to continue exactly where it was: the policy's weights
/// (with any value head and LoRA adapters), the optimizer's moments and step counts (the step count is
/// also the learning-rate schedule's position), the learner's random stream and libtorch's global one.
/// After <see cref="Load"/> the next update is bit-identical to the one an uninterrupted learner makes.
/// </summary>
/// <remarks>
/// The files go into an existing directory as they are; making the directory appear atomically is the
/// caller's job (see OnlineRl.Pipeline's LearnerStateStore).
/// </remarks>
public static class LearnerCheckpoint
{
    /// <summary>The policy's state dict.</summary>
    public const string WeightsFile = "policy.safetensors";
    /// <summary>Optimizer moments and random-generator states.</summary>
    public const string StateFile = "learner-state.safetensors";
    /// <summary>Step counts (JSON).</summary>
    public const string InfoFile = "learner.json";

    private const string LearnerRandom = "rng.learner";
    private const string GlobalRandom = "rng.global";

    private sealed record Info(long Step, long NonFiniteUpdates, long OptimizerStep, long[] ParameterSteps);

    /// <summary>Writes the state of <paramref name="learner"/> and the weights of <paramref name="policy"/> into <paramref name="directory"/>.</summary>
    public static void Save(string directory, TransformerModel policy, Learner learner)
    {
        Directory.CreateDirectory(directory);
        SafeTensorsFile.Save(Path.Combine(directory, WeightsFile), policy.state_dict());
        using var state = learner.CaptureState();
        using var globalRandom = torch.get_rng_state();
        var tensors = new List<KeyValuePair<string, Tensor>> { new(LearnerRandom, state.RandomState), new(GlobalRandom, globalRandom) };
        for (var i = 0; i < state.Optimizer.ExpAvg.Count; i++)
        {
            if (state.Optimizer.ExpAvg[i] is not { } avg) continue;
            tensors.Add(new($"exp_avg.{i}", avg));
            tensors.Add(new($"exp_avg_sq.{i}", state.Optimizer.ExpAvgSq[i]!));
        }
        SafeTensorsFile.Save(Path.Combine(directory, StateFile), tensors);
        var info = new Info(state.Step, state.NonFiniteUpdates, state.Optimizer.StepCount, state.Optimizer.ParameterSteps.ToArray());
        using var stream = new FileStream(Path.Combine(directory, InfoFile), FileMode.Create, FileAccess.Write);
        JsonSerializer.Serialize(stream, info);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Loads a state written by <see cref="Save"/> into <paramref name="policy"/> and <paramref name="learner"/>
    /// (built with the same architecture and options). Missing or inconsistent files throw <see cref="InvalidDataException"/> naming the file.
    /// </summary>
    public static void Load(string directory, TransformerModel policy, Learner learner)
    {
        var infoPath = Path.Combine(directory, InfoFile);
        Info info;
        try
        {
            info = JsonSerializer.Deserialize<Info>(File.ReadAllText(infoPath)) ?? throw new JsonException("empty");
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new InvalidDataException($"{infoPath}: unreadable learner state ({e.Message})", e);
        }
        using var scope = torch.NewDisposeScope();
        using (var weights = SafeTensorsFile.Open(Path.Combine(directory, WeightsFile)))
        {
            var own = policy.state_dict();
            try
            {
                policy.load_state_dict(weights.Tensors.Keys.ToDictionary(name => name, name => weights.Load(name, own.TryGetValue(name, out var t) ? t.dtype : null, policy.Device)));
            }
            catch (Exception e) when (e is InvalidOperationException or ExternalException)
            {
                // TorchSharp names neither the file nor, for a missing or extra tensor, the tensor.
                throw new InvalidDataException($"{weights.Path}: not the weights of this policy (another architecture?): {e.Message}", e);
            }
        }
        using var states = SafeTensorsFile.Open(Path.Combine(directory, StateFile));
        var parameters = learner.Optimizer.Parameters;
        if (info.ParameterSteps.Length != parameters.Count)
            throw new InvalidDataException($"{infoPath}: state of {info.ParameterSteps.Length} parameters, the learner trains {parameters.Count}");
        Tensor? Moment(string name, int i) => states.Tensors.ContainsKey($"{name}.{i}") ? states.Load($"{name}.{i}", parameters[i].dtype, parameters[i].device) : null;
        var optimizer = new AdamWState(info.OptimizerStep, info.ParameterSteps,
            Enumerable.Range(0, parameters.Count).Select(i => Moment("exp_avg", i)).ToArray(),
            Enumerable.Range(0, parameters.Count).Select(i => Moment("exp_avg_sq", i)).ToArray());
        var learnerRandom = RandomState(states, LearnerRandom);
        var globalRandom = RandomState(states, GlobalRandom);
        learner.RestoreState(new LearnerState(info.Step, info.NonFiniteUpdates, optimizer, learnerRandom));
        torch.set_rng_state(globalRandom);
    }

    /// <summary>
    /// A saved generator state, checked first: libtorch refuses a state of another size with a C++ exception that
    /// TorchSharp's set_state lets escape, which aborts the process. Both saved generators are CPU generators.
    /// </summary>
    private static Tensor RandomState(SafeTensorsFile states, string name)
    {
        using var current = torch.get_rng_state();
        if (!states.Tensors.TryGetValue(name, out var info) || info.Type != current.dtype || !info.Shape.SequenceEqual(current.shape))
            throw new InvalidDataException($"{states.Path}: '{name}' is not a CPU random generator state ({current.dtype} [{current.numel()}])");
        return states.Load(name);
    }
}
