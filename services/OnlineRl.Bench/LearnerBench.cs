using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineRl.Hosting;
using OnlineRl.Model;
using OnlineRl.Rewards;
using OnlineRl.Pipeline;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Training;

namespace OnlineRl.Bench;

/// <summary>
/// The RL rows of `onlinerl-bench bench`, both on the main job's policy (configs/grpo-addition.yaml: 3 layers,
/// width 128, 4 heads, character vocabulary):
/// <list type="bullet">
/// <item>learner step: one GRPO update of our <see cref="Learner"/> on a fixed scored batch against the same
/// update written plainly in PyTorch (bench/learner_reference.py), both reading the batch and weights from
/// one temporary folder, in alternating timed blocks; the first update's losses must agree;</item>
/// <item>pipeline throughput: trained samples per second of the whole in-process run with generation and
/// learning overlapped (train.overlap true, max_policy_lag 1) and strictly alternating, and overlapped with weights
/// swapped in flight against swapped between groups, with the policy lag of the trained tokens.</item>
/// </list>
/// </summary>
internal static class LearnerBench
{
    /// <summary>The first update's losses may differ by this much (float32 sums in a different order).</summary>
    private const double LossTolerance = 1e-4;

    private const double StepTarget = 1.1;

    /// <summary>The RL section of the bench report as markdown.</summary>
    public static string Section(bool quick, int threads, Action<string> progress)
    {
        var configPath = Path.Combine(AppContext.BaseDirectory, "configs", "grpo-addition.yaml");
        var text = new StringBuilder();
        text.AppendLine().AppendLine($"## RL learner and pipeline (the main job's policy, {threads} threads)").AppendLine();
        text.AppendLine(LearnerStep(quick, configPath, threads, progress));
        text.AppendLine(PipelineThroughput(quick, configPath, threads, progress));
        return text.ToString();
    }

    // ---- learner step -----------------------------------------------------------------------------

    private static string LearnerStep(bool quick, string configPath, int threads, Action<string> progress)
    {
        var config = RunConfig.Load(configPath);
        var directory = Path.Combine(Path.GetTempPath(), $"onlinerl-bench-learner-{Environment.ProcessId}");
        try
        {
            var options = PipelineServices.LearnerOptions(config);
            var tokenizer = PolicySetup.Tokenizer(config);
            torch.manual_seed(0);
            using var policy = PolicySetup.Create(config, tokenizer, ModelHeads.None, CPU);
            // A second initialisation rather than a copy of the policy, so that the KL term is not zero.
            torch.manual_seed(1);
            using var reference = PolicySetup.Create(config, tokenizer, ModelHeads.None, CPU);
            foreach (var p in reference.parameters()) p.requires_grad = false;
            Checkpoint.Save(policy, Path.Combine(directory, "policy"));
            Checkpoint.Save(reference, Path.Combine(directory, "reference"));
            var batchPath = Path.Combine(directory, "batch.json");
            WriteBatch(batchPath, policy, tokenizer, config, options);
            var groups = ReadBatch(batchPath);
            var tokens = groups.Sum(g => g.Completions.Sum(c => c.Tokens.Length));

            using var learner = new Learner(policy, reference, options);
            BenchCommand.ReferenceProcess? python = null;
            string? referenceError = null;
            try { python = BenchCommand.ReferenceProcess.Start("learner_reference.py", JsonSerializer.Serialize(new { threads, directory })); }
            catch (BenchCommand.ReferenceUnavailableException e) { referenceError = e.Message; }
            try
            {
                // The first update on both sides starts from the same weights: its losses must agree.
                var ourLoss = learner.Step(groups).Metrics["loss"];
                double? theirLoss = null;
                if (python is not null)
                {
                    try
                    {
                        using var reply = python.Request("learner_step", 1);
                        theirLoss = reply.RootElement.GetProperty("loss").GetDouble();
                    }
                    catch (BenchCommand.ReferenceUnavailableException e)
                    {
                        referenceError = e.Message;
                        python.Dispose();
                        python = null;
                    }
                }
                var agreement = theirLoss is { } l
                    ? $"first-update loss ours {ourLoss:F6}, reference {l:F6}, difference {Math.Abs(ourLoss - l):E1} ({(Math.Abs(ourLoss - l) <= LossTolerance ? "agree" : "DISAGREE")} within {LossTolerance:E0})"
                    : $"first-update loss ours {ourLoss:F6}, reference n/a";
                progress($"  learner: {agreement}");

                var metric = new BenchCommand.Metric("learner_step",
                    $"GRPO learner step ({groups.Count} prompts x G={groups[0].Completions.Count}, {tokens} completion tokens)",
                    BenchCommand.Unit.Milli, StepTarget, Count: 1, Repeats: quick ? 6 : 40, Parallel: true);
                var result = BenchCommand.Measure(metric, count =>
                {
                    for (var i = 0; i < count; i++)
                    {
                        var loss = learner.Step(groups).Metrics["loss"];
                        if (!double.IsFinite(loss)) throw new InvalidOperationException($"the learner benchmark produced a non-finite loss ({loss})");
                    }
                }, warmupSeconds: quick ? 1 : 3, budgetSeconds: quick ? 8 : 40, ref python, ref referenceError);
                var ratio = result.Reference is { } r ? result.Ours / r : (double?)null;
                progress($"  learner step: ours {result.Ours * 1e3:F1} ms, reference {(result.Reference is { } x ? $"{x * 1e3:F1} ms" : "n/a")}, " +
                         $"ratio {Ratio(ratio)} (paired median {Ratio(result.PairedMedianRatio)})");

                var table = new StringBuilder();
                table.AppendLine(CultureInfo.InvariantCulture,
                    $"Learner step: one GRPO update on a fixed scored batch ({groups.Count} \"a+b=\" prompts x {groups[0].Completions.Count} completions sampled from the initial policy, seeded 0/1 rewards, " +
                    $"the sampler's behaviour log-probs; a second random initialisation as the frozen reference so the KL term is not zero): forward of policy and " +
                    $"reference, token-level clipped surrogate (clip {options.Grpo.ClipLow}/{options.Grpo.ClipHigh}, truncated importance weight at {options.Grpo.MaxImportanceWeight}) " +
                    $"with k3 KL (beta {options.Grpo.Beta}), backward, clip_grad_norm_ ({options.MaxGradNorm}), AdamW. Ours: `Learner.Step` (which also builds the batch " +
                    $"tensors from the groups each step); reference: bench/learner_reference.py, the same update written plainly in PyTorch (torch.optim.AdamW with its CPU " +
                    $"defaults), on the same weights (safetensors) and batch (JSON). Alternating timed blocks as above; ratio = our time / reference time. " +
                    $"Check: {agreement}{(referenceError is null ? "" : $"; reference: {referenceError}")}.");
                table.AppendLine();
                table.AppendLine("| metric | ours | reference | ratio | target | paired median | blocks |");
                table.AppendLine("|---|---:|---:|---:|---|---:|---:|");
                var target = ratio is { } q ? $"<= {StepTarget:F1}: {(q <= StepTarget ? "met" : "MISSED")}" : $"<= {StepTarget:F1}";
                table.AppendLine(CultureInfo.InvariantCulture,
                    $"| {metric.Label} | {result.Ours * 1e3:F1} ms | {(result.Reference is { } y ? $"{y * 1e3:F1} ms" : "n/a")} | {Ratio(ratio)} | {target} | {Ratio(result.PairedMedianRatio)} | {result.Blocks} |");
                return table.ToString();
            }
            finally
            {
                python?.Dispose();
            }
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Samples the fixed batch from <paramref name="policy"/> and writes it, with the update's settings, as
    /// learner_reference.py's batch.json.
    /// </summary>
    private static void WriteBatch(string path, TransformerModel policy, OnlineRl.Tokenizers.ITokenizer tokenizer, RunConfig config, LearnerOptions options)
    {
        var tasks = TaskSource.Create(config.Task, config.Seed);
        var prompts = Enumerable.Range(0, config.Algorithm.PromptsPerStep).Select(i => tokenizer.Encode(tasks.Training(i).Prompt)).ToList();
        var completions = Sampler.Generate(policy, prompts, new SamplingOptions
        {
            CompletionsPerPrompt = config.Sampling.GroupSize, MaxNewTokens = config.Sampling.MaxNewTokens, Temperature = config.Sampling.Temperature, Seed = 1,
            StopTokenIds = tokenizer.EosId is { } eos ? new[] { eos } : Array.Empty<int>(),
        });
        // The initial policy never answers correctly: seeded 0/1 rewards give every group an advantage signal.
        var random = new Random(0);
        var groups = new JsonArray();
        for (var i = 0; i < prompts.Count; i++)
        {
            var group = new JsonArray();
            foreach (var c in completions.Where(c => c.PromptIndex == i))
                group.Add(new JsonObject { ["tokens"] = Json(c.TokenIds), ["logprobs"] = Json(c.LogProbs), ["reward"] = random.Next(2) });
            groups.Add(new JsonObject { ["prompt"] = Json(prompts[i]), ["completions"] = group });
        }
        var root = new JsonObject
        {
            ["options"] = new JsonObject
            {
                ["learning_rate"] = options.LearningRate, ["weight_decay"] = options.WeightDecay, ["max_grad_norm"] = options.MaxGradNorm,
                ["clip_low"] = options.Grpo.ClipLow, ["clip_high"] = options.Grpo.ClipHigh, ["kl_beta"] = options.Grpo.Beta,
                ["max_importance_weight"] = options.Grpo.MaxImportanceWeight, ["std_eps"] = 1e-4,
            },
            ["groups"] = groups,
        };
        File.WriteAllText(path, root.ToJsonString());
    }

    private static JsonArray Json(IEnumerable<int> values) => new(values.Select(v => (JsonNode?)v).ToArray());

    private static JsonArray Json(IEnumerable<float> values) => new(values.Select(v => (JsonNode?)v).ToArray());

    private static T[] Values<T>(JsonNode? array) => array!.AsArray().Select(v => v!.GetValue<T>()).ToArray();

    /// <summary>The batch as the learner takes it, read back from the file the reference reads.</summary>
    private static List<ScoredGroupData> ReadBatch(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))!;
        return root["groups"]!.AsArray().Select((g, i) => new ScoredGroupData($"bench-{i}", Values<int>(g!["prompt"]),
            g["completions"]!.AsArray().Select(c => new ScoredCompletion(Values<int>(c!["tokens"]), Values<float>(c["logprobs"]),
                c["reward"]!.GetValue<double>())).ToList(), PolicyVersion: 0)).ToList();
    }

    // ---- pipeline throughput ----------------------------------------------------------------------

    /// <summary>
    /// A way to run the pipeline: train.overlap, sampling.weight_swap, sampling.max_new_tokens and
    /// algorithm.prompts_per_step (null: the config's) and train.max_policy_lag.
    /// </summary>
    private sealed record PipelineMode(string Name, bool Overlap, string WeightSwap, int? MaxNewTokens = null, int? PromptsPerStep = null, int MaxPolicyLag = 1);

    private static readonly PipelineMode Overlapped = new("overlapped", true, SamplingSection.InFlightSwap);
    private static readonly PipelineMode Alternating = new("alternating", false, SamplingSection.InFlightSwap);

    // The weight-swap rows need a generator that is busy when a version arrives. With the main job's settings the learner
    // is the bottleneck: its 6-token completions end within a few decode steps and, with max_policy_lag 1, the feeder
    // admits the next batch only after an update, so the generator idles at every new version whichever way it swaps.
    // These rows sample up to 128 tokens (without the SFT warm start the policy ends at its end token after anywhere from
    // 1 to 128 tokens: the length mix where waiting for running groups costs), train on 8 prompts per update (a short
    // update, so versions arrive while completions run) and admit up to 3 versions ahead.
    private const int SwapRowTokens = 128;
    private const int SwapRowPrompts = 8;
    private const int SwapRowLag = 3;

    private static readonly PipelineMode InFlight = new("overlapped, in-flight swaps", true, SamplingSection.InFlightSwap, SwapRowTokens, SwapRowPrompts, SwapRowLag);
    private static readonly PipelineMode BetweenGroups = new("overlapped, swaps between groups", true, SamplingSection.BetweenGroupsSwap, SwapRowTokens, SwapRowPrompts, SwapRowLag);

    private static string PipelineThroughput(bool quick, string configPath, int threads, Action<string> progress)
    {
        var steps = quick ? 6 : 15;
        var groupSize = RunConfig.Load(configPath).Sampling.GroupSize;
        var groupTokens = RunConfig.Load(configPath).Sampling.MaxNewTokens;
        var rounds = quick ? 1 : 2;
        var best = new Dictionary<PipelineMode, RunSummary>();
        // Untimed: the first run in the process pays for JIT compilation of the whole pipeline.
        Run(configPath, Overlapped, steps: 2, threads);
        for (var round = 0; round < rounds; round++)
        {
            foreach (var mode in new[] { Overlapped, Alternating, InFlight, BetweenGroups })
            {
                var summary = Run(configPath, mode, steps, threads);
                var rate = SamplesPerSecond(summary, groupSize);
                progress($"  pipeline, {mode.Name} (round {round + 1}): {rate:F0} samples/s, {summary.Steps.Count} steps in {summary.ElapsedSeconds:F1}s " +
                         $"(learner {LearnerSeconds(summary):F2} s/step), dropped stale {summary.DroppedStale}, token lag {LagDistribution(summary)}");
                if (!best.TryGetValue(mode, out var previous) || rate > SamplesPerSecond(previous, groupSize)) best[mode] = summary;
            }
        }
        double Rate(PipelineMode mode) => SamplesPerSecond(best[mode], groupSize);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Pipeline throughput: the whole in-process run (feeder, generator, scorer, learner on the in-process bus; configs/grpo-addition.yaml " +
            $"without the SFT warm start or evaluation), {steps} learner steps; samples/s = trained completions / " +
            $"wall time of the RL phase, best of {rounds} run(s) per mode, modes alternating, after an untimed 2-step run (JIT warm-up). Overlapped: train.overlap true, max_policy_lag 1 (the generator " +
            $"samples the next batch while the learner updates); alternating: train.overlap false (generate, then learn). Ratio = overlapped / alternating, so > 1.0 means overlap helps. " +
            $"Learner s/step: the mean time of one update inside the run; overlap only pays when the update does not slow down by more than the generation time it hides " +
            $"(on a machine whose cores are all busy, generator and learner compete for them).");
        text.AppendLine();
        text.AppendLine("| metric | overlapped | alternating | ratio | learner s/step overlapped | learner s/step alternating | dropped stale (overlapped) |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| pipeline samples/s ({steps} steps) | {Rate(Overlapped):F0} | {Rate(Alternating):F0} | {Rate(Overlapped) / Rate(Alternating):F2} | {LearnerSeconds(best[Overlapped]):F2} | {LearnerSeconds(best[Alternating]):F2} | {best[Overlapped].DroppedStale} |");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Weight swaps (sampling.weight_swap), both overlapped as above but with completions of up to {SwapRowTokens} tokens (the main job's {groupTokens} end within a few decode steps, " +
            $"so a swap between groups costs little there), {SwapRowPrompts} prompts per update and max_policy_lag {SwapRowLag} (with the main job's settings the generator idles at every new version " +
            $"whichever way it swaps), so that versions arrive while completions run: in flight, the generator swaps in each new version between two decode steps and " +
            $"the running completions go on under it (their keys/values recomputed); between groups, no prompt joins once a newer version is announced and the swap " +
            $"waits until the running groups end. Ratio = in flight / between groups. Token lag: the trained completion tokens by versions between the learner and the " +
            $"policy that sampled each token (share at lag 0 / 1 / 2 or more, and the mean).");
        text.AppendLine();
        text.AppendLine("| metric | in flight | between groups | ratio | token lag in flight | token lag between groups | dropped stale in flight / between |");
        text.AppendLine("|---|---:|---:|---:|---|---|---:|");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| pipeline samples/s ({steps} steps) | {Rate(InFlight):F0} | {Rate(BetweenGroups):F0} | {Rate(InFlight) / Rate(BetweenGroups):F2} | {LagDistribution(best[InFlight])} | {LagDistribution(best[BetweenGroups])} | {best[InFlight].DroppedStale} / {best[BetweenGroups].DroppedStale} |");
        return text.ToString();
    }

    private static RunSummary Run(string configPath, PipelineMode mode, int steps, int threads)
    {
        var output = Path.Combine(Path.GetTempPath(), $"onlinerl-bench-pipeline-{Environment.ProcessId}");
        var overrides = new Dictionary<string, string>
        {
            ["output_dir"] = output, ["threads"] = threads.ToString(CultureInfo.InvariantCulture), ["sft.steps"] = "0", ["task.eval_size"] = "0",
            ["train.eval_every"] = "0", ["train.steps"] = steps.ToString(CultureInfo.InvariantCulture), ["train.overlap"] = mode.Overlap ? "true" : "false",
            ["train.max_policy_lag"] = mode.MaxPolicyLag.ToString(CultureInfo.InvariantCulture), ["sampling.weight_swap"] = mode.WeightSwap,
        };
        if (mode.MaxNewTokens is { } tokens) overrides["sampling.max_new_tokens"] = tokens.ToString(CultureInfo.InvariantCulture);
        if (mode.PromptsPerStep is { } prompts) overrides["algorithm.prompts_per_step"] = prompts.ToString(CultureInfo.InvariantCulture);
        var config = RunConfig.Load(configPath, overrides);
        try
        {
            return InProcessRun.RunAsync(config, _ => { }, transports: new Transports()).GetAwaiter().GetResult();
        }
        finally
        {
            try { Directory.Delete(output, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The run's trained tokens by version lag: shares at 0, 1 and 2 or more, and the mean.</summary>
    private static string LagDistribution(RunSummary summary)
    {
        var counts = new Dictionary<long, long>();
        foreach (var step in summary.Steps)
            foreach (var (lag, tokens) in step.TokenLags ?? new Dictionary<long, long>())
                counts[lag] = counts.GetValueOrDefault(lag) + tokens;
        var total = (double)counts.Values.Sum();
        if (total == 0) return "n/a";
        var mean = counts.Sum(kv => kv.Key * kv.Value) / total;
        return string.Create(CultureInfo.InvariantCulture,
            $"{counts.GetValueOrDefault(0) / total:P0} / {counts.GetValueOrDefault(1) / total:P0} / {counts.Where(kv => kv.Key >= 2).Sum(kv => kv.Value) / total:P0}, mean {mean:F2}");
    }

    /// <summary>Mean seconds of one learner update in the run.</summary>
    private static double LearnerSeconds(RunSummary summary) => summary.Steps.Average(s => s.Metrics["step_seconds"]);

    /// <summary>Completions trained on per second of the RL phase.</summary>
    private static double SamplesPerSecond(RunSummary summary, int groupSize) => summary.TrainedPrompts.Count * groupSize / summary.ElapsedSeconds;

    private static string Ratio(double? value) => value is { } v ? v.ToString("F2", CultureInfo.InvariantCulture) : "n/a";
}
