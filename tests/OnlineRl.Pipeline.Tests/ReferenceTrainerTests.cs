using System.Globalization;
using System.Text.Json.Nodes;
using OnlineRl.Rewards;
using OnlineRl.TestSupport;
using Xunit.Abstractions;

namespace OnlineRl.Pipeline.Tests;

// The plain PyTorch reference trainer (services/OnlineRl.Bench/bench/reference_trainer.py) is the anchor our learning
// curves are compared against (`onlinerl-bench compare-reference`). It must start where ours starts: from our SFT checkpoint it
// has to score the same held-out accuracy as our evaluation (its own model code, tokenizer, KV-cache greedy decoding and
// exact match), and each of its algorithms must run updates and report a curve.
[Collection("learning")]
public sealed class ReferenceTrainerTests(SftStartFixture start, ITestOutputHelper output)
{
    [SkippableFact]
    public void ReferenceTrainerStartsFromOurCheckpointAtOurHeldOutAccuracyAndTrains()
    {
        Skip.IfNot(File.Exists(PythonProcess.Python), $"{PythonProcess.Python} is missing (./test.sh installs python3-torch)");
        var directory = Path.Combine(Path.GetTempPath(), $"onlinerl-reference-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            var heldOut = Path.Combine(directory, "heldout.jsonl");
            var lines = TaskSource.Create(start.Config.Task, start.Config.Seed).HeldOut
                .Select(t => new JsonObject { ["prompt"] = t.Prompt, ["answer"] = t.Answer }.ToJsonString()).ToList();
            File.WriteAllLines(heldOut, lines);
            // PPO and DPO only have to train and report: 50 problems keep their evaluations short.
            var fewHeldOut = Path.Combine(directory, "heldout-50.jsonl");
            File.WriteAllLines(fewHeldOut, lines.Take(50));
            var script = Path.Combine(AppContext.BaseDirectory, "reference", "reference_trainer.py");
            foreach (var algorithm in new[] { "grpo", "ppo", "dpo" })
            {
                var csv = Path.Combine(directory, $"{algorithm}.csv");
                var settings = new JsonObject
                {
                    ["checkpoint"] = start.Directory, ["heldout"] = algorithm == "grpo" ? heldOut : fewHeldOut, ["csv"] = csv, ["algorithm"] = algorithm,
                    ["steps"] = 2, ["seconds"] = 300, ["learning_rate"] = 1e-4, ["warmup_steps"] = 20, ["prompts_per_step"] = 8,
                    ["group_size"] = 8, ["temperature"] = 1.0, ["max_new_tokens"] = start.Config.Sampling.MaxNewTokens,
                    ["max_digits"] = start.Config.Task.MaxDigits, ["clip"] = 0.2, ["kl_beta"] = 0.02, ["dpo_beta"] = 0.1,
                    ["eval_every"] = 0, ["seed"] = 1, ["threads"] = 2,
                };
                var (code, stdout, stderr) = PythonProcess.RunSeparated([script, settings.ToJsonString()], TimeSpan.FromMinutes(5));
                Assert.True(code == 0, $"{algorithm}: reference trainer failed ({code}): {stderr}");
                var summary = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
                output.WriteLine($"{algorithm}: {summary.ToJsonString()} (ours before RL: {start.Accuracy:P1})");
                // Two implementations of greedy decoding on two libtorch builds: a near-tie may flip one problem.
                if (algorithm == "grpo") Assert.InRange(summary["initial"]!.GetValue<double>(), start.Accuracy - 0.0021, start.Accuracy + 0.0021);
                Assert.Equal(2, summary["updates"]!.GetValue<int>());
                var rows = File.ReadAllLines(csv);
                Assert.Equal("update,seconds,heldout_accuracy,reward_mean,loss,kl", rows[0]);
                Assert.Equal(["0", "2"], rows.Skip(1).Select(r => r.Split(',')[0]));
                var final = double.Parse(rows[^1].Split(',')[2], CultureInfo.InvariantCulture);
                Assert.InRange(final, 0, 1);
            }
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }
}
