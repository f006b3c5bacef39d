using OnlineRl.Training;

namespace OnlineRl.Pipeline.Tests;

/// <summary>Tiny configurations and synthetic batches for the learner tests.</summary>
internal static class TinySetup
{
    /// <summary>
    /// How long a tiny pipeline run may take before the test calls it a hang. Measured from inside the test, because
    /// xUnit's own Fact timeout also counts the time a test waits for a free thread while other collections run.
    /// </summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromMinutes(5);

    public static Dictionary<string, string> Keys(string algorithm = "grpo") => new()
    {
        ["run_id"] = "tiny", ["threads"] = "1",
        ["model.hidden_size"] = "32", ["model.layers"] = "1", ["model.heads"] = "2", ["model.kv_heads"] = "2", ["model.intermediate_size"] = "64",
        ["task.eval_size"] = "8", ["sft.steps"] = "3", ["sampling.group_size"] = "4", ["sampling.max_new_tokens"] = "4",
        ["algorithm.name"] = algorithm, ["algorithm.prompts_per_step"] = "4", ["algorithm.warmup_steps"] = "2",
    };

    public static RunConfig Config(Dictionary<string, string> keys) => RunConfig.Load(null, keys);

    /// <summary>Deterministic groups of 4 completions over the addition alphabet (ids 0..11); <paramref name="reward"/> overrides rewards.</summary>
    public static List<ScoredGroupData> Groups(int seed, int count = 4, double? reward = null)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(g => new ScoredGroupData($"g{seed}-{g}", new[] { 1, 10, 2, 11 },
            Enumerable.Range(0, 4).Select(c => new ScoredCompletion(
                Enumerable.Range(0, 1 + random.Next(4)).Select(_ => random.Next(10)).ToArray(),
                Enumerable.Range(0, 4).Select(_ => -1f - (float)random.NextDouble()).ToArray(),
                reward ?? random.Next(2))).Select(c => c with { BehaviourLogProbs = c.BehaviourLogProbs[..c.Tokens.Length] }).ToList(), 0)).ToList();
    }

    public static Dictionary<string, float[]> Weights(OnlineRl.Model.TransformerModel model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.Float32).data<float>().ToArray());

    public static string TempDir(string name) => Path.Combine(Path.GetTempPath(), $"onlinerl-{name}-{Guid.NewGuid():N}");
}
