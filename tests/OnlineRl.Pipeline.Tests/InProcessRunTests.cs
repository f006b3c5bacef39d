namespace OnlineRl.Pipeline.Tests;

// The all-in-one run end to end on a tiny model: every stage talks through the bus, nothing is lost
// or trained twice, and the report files appear. (Learning itself is not asserted here.)
public class InProcessRunTests
{
    [Theory]
    [InlineData("grpo", true)]
    [InlineData("dpo", false)]
    [InlineData("ppo", true)]
    public async Task TinyRunCompletesWithExactlyOnceAccounting(string algorithm, bool overlap)
    {
        var output = Path.Combine(Path.GetTempPath(), $"onlinerl-run-{Guid.NewGuid():N}");
        try
        {
            var config = RunConfig.Load(null, new Dictionary<string, string>
            {
                ["run_id"] = "tiny", ["output_dir"] = output, ["threads"] = "1",
                ["model.hidden_size"] = "32", ["model.layers"] = "1", ["model.heads"] = "2", ["model.kv_heads"] = "2", ["model.intermediate_size"] = "64",
                ["task.eval_size"] = "8", ["sft.steps"] = "3", ["sampling.group_size"] = "4", ["sampling.max_new_tokens"] = "4",
                ["algorithm.name"] = algorithm, ["algorithm.prompts_per_step"] = "4", ["train.steps"] = "4", ["train.eval_every"] = "2",
                ["train.overlap"] = overlap ? "true" : "false",
            });
            var lines = new List<string>();
            var summary = await InProcessRun.RunAsync(config, line => { lock (lines) lines.Add(line); });
            Assert.Equal(4, summary.Steps.Count);
            Assert.Equal(new long[] { 1, 2, 3, 4 }, summary.Steps.Select(s => s.Step));
            Assert.Equal(summary.TrainedPrompts.Count, summary.TrainedPrompts.Distinct().Count());
            Assert.Equal(16, summary.TrainedPrompts.Count);
            // The in-flight limit and the prompts' minimum versions keep every sample within the allowed lag.
            Assert.Equal(0, summary.DroppedStale);
            Assert.All(summary.Steps, s => Assert.True(s.PolicyLagMean <= (overlap ? 1 : 0), $"step {s.Step}: lag {s.PolicyLagMean}"));
            Assert.Contains(summary.Steps, s => s.HeldOutAccuracy is not null);
            Assert.Contains(lines, l => l.Contains("held-out accuracy after 4 steps", StringComparison.Ordinal));
            foreach (var file in new[] { "metrics.csv", "reward.svg", "report.md", "report.html", "config.json", "checkpoint/model.safetensors", "checkpoint/onlinerl_tokenizer.json" })
                Assert.True(File.Exists(Path.Combine(output, file)), $"{file} was not written");
            Assert.Equal(5, File.ReadAllLines(Path.Combine(output, "metrics.csv")).Length);
        }
        finally
        {
            try { Directory.Delete(output, recursive: true); } catch (IOException) { }
        }
    }
}
