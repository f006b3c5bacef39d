using OnlineRl.Rewards;

namespace OnlineRl.Pipeline.Tests;

// Every section refuses out-of-range values, unknown keys and wrong types at load time, naming the key.
public class BadConfigTests
{
    [Theory]
    [InlineData("model.intermediate_size", "0", "model.intermediate_size")]
    [InlineData("model.lora_alpha", "-1", "model.lora_alpha")]
    [InlineData("task.bad_lines", "ignore", "task.bad_lines")]
    [InlineData("sft.learning_rate", "0", "sft.learning_rate")]
    [InlineData("sft.examples_per_step", "0", "sft.examples_per_step")]
    [InlineData("reward.model_weight", "NaN", "reward.model_weight")]
    [InlineData("sampling.top_k", "-1", "sampling.top_k")]
    [InlineData("sampling.temperature", "Infinity", "sampling.temperature")]
    [InlineData("algorithm.learning_rate", "NaN", "algorithm.learning_rate")]
    [InlineData("algorithm.warmup_steps", "-1", "algorithm.warmup_steps")]
    [InlineData("algorithm.max_grad_norm", "-1", "algorithm.max_grad_norm")]
    [InlineData("algorithm.max_importance_weight", "0.5", "algorithm.max_importance_weight")]
    [InlineData("algorithm.dpo_sft_weight", "-1", "algorithm.dpo_sft_weight")]
    [InlineData("algorithm.value_clip", "0", "algorithm.value_clip")]
    [InlineData("algorithm.value_coefficient", "-0.5", "algorithm.value_coefficient")]
    [InlineData("train.steps", "-5", "train.steps")]
    [InlineData("train.time_limit_minutes", "-1", "train.time_limit_minutes")]
    [InlineData("train.eval_every", "-1", "train.eval_every")]
    [InlineData("transport.kafka.security.protocol", " ", "transport.kafka.security.protocol")]
    [InlineData("service.id", " ", "service.id")]
    [InlineData("service.metrics_port", "-1", "service.metrics_port")]
    public void OutOfRangeValuesInEverySectionNameTheKey(string key, string value, string named)
    {
        var error = Assert.Throws<ConfigException>(() => RunConfig.Load(null, new Dictionary<string, string> { [key] = value }));
        Assert.Contains($"'{named}'", error.Message);
    }

    [Theory]
    [InlineData("model:\n  layer: 3\n", "layer")]
    [InlineData("task:\n  bad_line: skip\n", "bad_line")]
    [InlineData("transport:\n  buss: inproc\n", "buss")]
    [InlineData("service:\n  port: 9400\n", "port")]
    [InlineData("trian:\n  steps: 3\n", "trian")]
    public void UnknownKeysInAFileAreNamed(string yaml, string named)
    {
        var error = Assert.Throws<ConfigException>(() => LoadYaml(yaml));
        Assert.Contains($"'{named}'", error.Message);
    }

    [Theory]
    [InlineData("transport:\n  kafka: 5\n", "transport.kafka")]
    [InlineData("transport:\n  bus: [inproc]\n", "transport.bus")]
    [InlineData("service:\n  metrics_port: lots\n", "service.metrics_port")]
    [InlineData("model: 7\n", "model")]
    [InlineData("task:\n  eval_size: 1.5\n", "task.eval_size")]
    public void WrongTypesInAFileAreNamed(string yaml, string named)
    {
        var error = Assert.Throws<ConfigException>(() => LoadYaml(yaml));
        Assert.Contains($"'{named}'", error.Message);
    }

    [Fact]
    public void BadDatasetLinesStopTheRunByDefaultAndAreLoggedOneByOneWhenSkipped()
    {
        var path = Path.Combine(Path.GetTempPath(), $"onlinerl-dataset-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, Enumerable.Range(1, 6).Select(i => $$"""{"question": "q{{i}}", "answer": "#### {{i}}"}""")
            .Append("""{"question": "q7", "answer": "seven"}""").Append("""{"question": 8, "answer": "#### 8"}"""));
        try
        {
            var keys = new Dictionary<string, string> { ["task.kind"] = "jsonl", ["task.path"] = path, ["task.eval_size"] = "2" };
            var error = Assert.Throws<ConfigException>(() => TaskSource.Create(RunConfig.Load(null, keys).Task, seed: 1));
            Assert.Contains($"{path}:7: field 'answer'", error.Message);
            Assert.Contains("task.bad_lines", error.Message);

            keys["task.bad_lines"] = "skip";
            var log = new List<string>();
            var tasks = TaskSource.Create(RunConfig.Load(null, keys).Task, seed: 1, log.Add);
            Assert.Equal(2, tasks.HeldOut.Count);
            Assert.Equal(["3", "4", "5", "6"], Enumerable.Range(0, 4).Select(i => tasks.Training(i).Answer));
            Assert.Contains(log, line => line.Contains($"{path}:7:", StringComparison.Ordinal));
            Assert.Contains(log, line => line.Contains($"{path}:8: field 'question': a Number, not a string", StringComparison.Ordinal));
            Assert.Contains(log, line => line.StartsWith("skipped 2 bad lines", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static RunConfig LoadYaml(string yaml)
    {
        var path = Path.Combine(Path.GetTempPath(), $"onlinerl-config-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        try
        {
            return RunConfig.Load(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
