namespace OnlineRl.Pipeline.Tests;

public class RunConfigTests
{
    private static string Write(string text, string extension)
    {
        var path = Path.Combine(Path.GetTempPath(), $"onlinerl-config-{Guid.NewGuid():N}{extension}");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void YamlAndJsonGiveTheSameConfigAndFlagsOverrideThem()
    {
        var yaml = Write("""
            run_id: demo
            sampling:
              group_size: 4
              temperature: 0.7
            algorithm:
              name: dpo
              dpo_beta: 0.2
            train:
              overlap: false
            """, ".yaml");
        var json = Write("""{"run_id": "demo", "sampling": {"group_size": 4, "temperature": 0.7}, "algorithm": {"name": "dpo", "dpo_beta": 0.2}, "train": {"overlap": false}}""", ".json");
        try
        {
            var fromYaml = RunConfig.Load(yaml);
            var fromJson = RunConfig.Load(json);
            Assert.Equal(fromJson.ToJson(), fromYaml.ToJson());
            Assert.Equal(4, fromYaml.Sampling.GroupSize);
            Assert.Equal(OnlineRl.Algorithms.AlgorithmKind.Dpo, fromYaml.Algorithm.Name);
            Assert.False(fromYaml.Train.Overlap);
            Assert.Equal(6, fromYaml.Sampling.MaxNewTokens); // untouched keys keep their defaults
            var overridden = RunConfig.Load(yaml, new Dictionary<string, string> { ["algorithm.name"] = "ppo", ["sampling.group_size"] = "16", ["train.overlap"] = "true" });
            Assert.Equal(OnlineRl.Algorithms.AlgorithmKind.Ppo, overridden.Algorithm.Name);
            Assert.Equal(16, overridden.Sampling.GroupSize);
            Assert.True(overridden.Train.Overlap);
            Assert.Equal(0.2, overridden.Algorithm.DpoBeta);
        }
        finally
        {
            File.Delete(yaml);
            File.Delete(json);
        }
    }

    [Theory]
    [InlineData("algorithm.name", "reinforce", "algorithm.name")]
    [InlineData("sampling.group_size", "1", "sampling.group_size")]
    [InlineData("algorithm.kl_estimator", "k7", "algorithm.kl_estimator")]
    [InlineData("task.kind", "jsonl", "task.path")]
    [InlineData("model.kv_heads", "3", "model.kv_heads")]
    [InlineData("sampling.weight_swap", "sometimes", "sampling.weight_swap")]
    [InlineData("sampling.swap_cache", "drop", "sampling.swap_cache")]
    [InlineData("sampling.batching", "static", "in_flight swaps need sampling.batching continuous")]
    public void BadValuesNameTheKey(string key, string value, string named)
    {
        var error = Assert.Throws<ConfigException>(() => RunConfig.Load(null, new Dictionary<string, string> { [key] = value }));
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void UnknownKeysAndUnparsableFilesAreErrors()
    {
        var error = Assert.Throws<ConfigException>(() => RunConfig.Load(null, new Dictionary<string, string> { ["sampling.temprature"] = "0.5" }));
        Assert.Contains("temprature", error.Message);
        var path = Write("sampling: [unclosed", ".yaml");
        try
        {
            error = Assert.Throws<ConfigException>(() => RunConfig.Load(path));
            Assert.Contains(path, error.Message);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Throws<ConfigException>(() => RunConfig.Load("/nonexistent/config.yaml"));
    }

    [Fact]
    public void TheShippedConfigLoads()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "services", "OnlineRl.Cli", "configs", "grpo-addition.yaml");
            if (!File.Exists(path)) continue;
            var config = RunConfig.Load(path);
            Assert.Equal(OnlineRl.Algorithms.AlgorithmKind.Grpo, config.Algorithm.Name);
            Assert.Equal("addition", config.Task.Kind);
            return;
        }
        Assert.Fail("services/OnlineRl.Cli/configs/grpo-addition.yaml not found above the test folder");
    }
}
