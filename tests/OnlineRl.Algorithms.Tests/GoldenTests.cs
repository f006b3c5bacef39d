using System.Text.Json;
using F = TorchSharp.torch.nn.functional;

// Tests compare live tensor counts (EdgeCaseTests); run them one at a time so that no other test disturbs the count.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace OnlineRl.Algorithms.Tests;

/// <summary>
/// Every loss, advantage estimator and KL estimator against golden/algorithms.json, made by golden/make_golden.py
/// from an independent PyTorch implementation of each paper's formula: outputs, statistics and the gradient of the
/// loss with respect to the inputs marked "grad" (current log-probs, values, logits, rewards). Each case runs in
/// float64 (tolerance 1e-9) and float32 (tolerance 1e-4); results must keep the inputs' dtype.
/// </summary>
public class GoldenTests
{
    /// <summary>One runner per case kind: the C# calls, returning outputs named as in the golden file.</summary>
    private static readonly Dictionary<string, Func<GoldenCase, Dictionary<string, object>>> Runners = new()
    {
        ["grpo_advantages"] = c => new()
        {
            ["advantages"] = Advantages.Grpo(c.In("rewards"), c.Flag("scale_std"), c.Number("eps")),
        },
        ["gae"] = c =>
        {
            var (advantages, returns) = Advantages.Gae(c.In("rewards"), c.In("values"), c.In("mask"), c.Number("gamma"), c.Number("lambda"));
            return new() { ["advantages"] = advantages, ["returns"] = returns };
        },
        ["whiten"] = c => new() { ["whitened"] = Advantages.Whiten(c.In("x"), c.In("mask"), c.Flag("shift_mean")) },
        ["kl"] = c =>
        {
            var kl = Kl.PerToken(c.In("logp"), c.Maybe("ref_logp"), Estimator(c.Text("estimator")));
            return new() { ["kl"] = kl, ["loss"] = Masked.Mean(kl, c.In("mask")) };
        },
        ["grpo_loss"] = c =>
        {
            var options = new GrpoOptions
            {
                ClipLow = c.Number("clip_low"),
                ClipHigh = c.Number("clip_high"),
                Aggregation = c.Text("aggregation") switch
                {
                    "token_mean" => LossAggregation.TokenMean,
                    "sequence_mean" => LossAggregation.SequenceMean,
                    "sum_over_max_tokens" => LossAggregation.SumOverMaxTokens,
                    var other => throw new NotSupportedException(other),
                },
                MaxCompletionLength = c.IntegerOrNull("max_len"),
                Beta = c.Number("beta"),
                KlEstimator = Estimator(c.Text("kl")),
                MaxImportanceWeight = c.NumberOrNull("cap"),
            };
            var result = Grpo.Loss(c.In("logp"), c.In("adv"), c.In("mask"), options, c.Maybe("old_logp"), c.Maybe("ref_logp"), c.Maybe("behav_logp"));
            return PolicyOutputs(result);
        },
        ["grpo_filter"] = c => new() { ["kept"] = Grpo.GroupsWithDistinctRewards(c.Floats("rewards"), c.Integer("group_size")) },
        ["ppo_policy"] = c => PolicyOutputs(Ppo.PolicyLoss(c.In("logp"), c.In("old_logp"), c.In("adv"), c.In("mask"), c.Number("clip"))),
        ["ppo_value"] = c =>
        {
            var result = Ppo.ValueLoss(c.In("values"), c.In("old_values"), c.In("returns"), c.In("mask"), c.Number("clip"));
            return new() { ["loss"] = result.Loss, ["clip_fraction"] = result.ClipFraction };
        },
        ["ppo_rewards"] = c => new()
        {
            ["rewards"] = Ppo.KlPenalizedRewards(c.In("scores"), c.In("logp"), c.In("ref_logp"), c.In("mask"), c.Number("beta"), Estimator(c.Text("estimator"))),
        },
        ["ppo_total"] = c =>
        {
            var policy = Ppo.PolicyLoss(c.In("logp"), c.In("old_logp"), c.In("adv"), c.In("mask"), c.Number("clip"));
            var value = Ppo.ValueLoss(c.In("values"), c.In("old_values"), c.In("returns"), c.In("mask"), c.Number("value_clip"));
            var entropy = Ppo.Entropy(c.In("logits"));
            var entropyCoefficient = c.Number("entropy_coef");
            var loss = Ppo.TotalLoss(policy.Loss, value.Loss, c.Number("value_coef"),
                entropyCoefficient != 0 ? entropy : null, c.In("mask"), entropyCoefficient);
            return new() { ["loss"] = loss, ["entropy"] = entropy };
        },
        ["dpo_pairs"] = c => new()
        {
            ["pairs"] = Dpo.PairsFromGroups(c.Floats("rewards"), c.Integer("group_size")).Select(p => new[] { p.Group, p.Chosen, p.Rejected }).ToArray(),
        },
        ["dpo"] = c =>
        {
            var options = new DpoOptions
            {
                Beta = c.Number("beta"),
                LossType = c.Text("loss_type") == "ipo" ? DpoLossType.Ipo : DpoLossType.Sigmoid,
                LabelSmoothing = c.Number("label_smoothing"),
                ReferenceFree = c.Flag("reference_free"),
                SftWeight = c.Number("sft_weight"),
            };
            var result = Dpo.Loss(c.In("chosen"), c.In("chosen_mask"), c.In("rejected"), c.In("rejected_mask"),
                c.Maybe("ref_chosen"), c.Maybe("ref_rejected"), options);
            return new()
            {
                ["loss"] = result.Loss,
                ["accuracy"] = result.Stats.RewardAccuracy,
                ["margin"] = result.Stats.RewardMargin,
                ["chosen_reward"] = result.Stats.ChosenReward,
                ["rejected_reward"] = result.Stats.RejectedReward,
                ["sft_loss"] = result.Stats.SftLoss,
            };
        },
        ["rm"] = c =>
        {
            var result = RewardModelLoss.BradleyTerry(c.In("chosen"), c.In("rejected"));
            return new() { ["loss"] = result.Loss, ["accuracy"] = result.Accuracy };
        },
        ["op_logsigmoid"] = c =>
        {
            var output = F.logsigmoid(c.In("x"));
            return new() { ["out"] = output, ["loss"] = output.sum() };
        },
        ["op_softplus"] = c =>
        {
            var output = F.softplus(c.In("x"), c.Number("beta"), c.Number("threshold"));
            return new() { ["out"] = output, ["loss"] = output.sum() };
        },
    };

    private static KlEstimator Estimator(string name) => name switch
    {
        "none" => KlEstimator.None,
        "k1" => KlEstimator.K1,
        "k2" => KlEstimator.K2,
        "k3" => KlEstimator.K3,
        _ => throw new NotSupportedException(name),
    };

    private static Dictionary<string, object> PolicyOutputs(PolicyLossResult result) => new()
    {
        ["loss"] = result.Loss,
        ["clip_low"] = result.Stats.ClipFractionLow,
        ["clip_high"] = result.Stats.ClipFractionHigh,
        ["ratio_mean"] = result.Stats.RatioMean,
        ["kl_mean"] = result.Stats.KlMean,
        ["is_mean"] = result.Stats.ImportanceWeightMean,
        ["is_max"] = result.Stats.ImportanceWeightMax,
    };

    public static IEnumerable<object[]> Cases() =>
        Golden.Cases.EnumerateObject().SelectMany(c => new[] { new object[] { c.Name, "float64" }, new object[] { c.Name, "float32" } });

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_pytorch(string name, string dtypeName)
    {
        var dtype = dtypeName == "float64" ? ScalarType.Float64 : ScalarType.Float32;
        var tolerance = dtype == ScalarType.Float64 ? 1e-9 : 1e-4;
        using var scope = torch.NewDisposeScope();
        var c = new GoldenCase(name, dtype);
        Assert.True(Runners.TryGetValue(c.Kind, out var run), $"no runner for kind '{c.Kind}' of case {name}");
        var actual = run(c);

        foreach (var expected in c.Outputs.EnumerateObject())
        {
            Assert.True(actual.TryGetValue(expected.Name, out var value), $"{name}: the runner returned no '{expected.Name}'");
            var what = $"{name} ({dtypeName}) output '{expected.Name}'";
            switch (expected.Value.ValueKind)
            {
                case JsonValueKind.Object:
                    var tensor = Assert.IsType<Tensor>(value);
                    Assert.True(tensor.dtype == dtype, $"{what}: dtype {tensor.dtype}, expected {dtype}");
                    Assert.Equal(Golden.Shape(expected.Value), tensor.shape);
                    Golden.AssertClose(Golden.Values(expected.Value), Golden.Read(tensor), tolerance, what);
                    break;
                case JsonValueKind.Array:
                    Assert.Equal(expected.Value.GetRawText(), JsonSerializer.Serialize(value));
                    break;
                default:
                    Golden.AssertClose([Golden.Number(expected.Value)], [Assert.IsType<double>(value)], tolerance, what);
                    break;
            }
        }

        var grads = c.Grads.EnumerateObject().ToList();
        if (grads.Count == 0) return;
        var loss = (Tensor)actual["loss"];
        if (loss.requires_grad) loss.backward();
        foreach (var expected in grads)
        {
            // An input the loss does not depend on gets no gradient at all; PyTorch's golden value is then zeros.
            var input = c.In(expected.Name);
            var grad = input.grad ?? torch.zeros_like(input);
            Assert.Equal(Golden.Shape(expected.Value), grad.shape);
            Golden.AssertClose(Golden.Values(expected.Value), Golden.Read(grad), tolerance, $"{name} ({dtypeName}) d loss / d {expected.Name}");
        }
    }

    [Fact]
    public void Every_kind_has_a_runner_and_every_runner_a_case()
    {
        var kinds = Golden.Cases.EnumerateObject().Select(c => c.Value.GetProperty("kind").GetString()!).ToHashSet();
        Assert.Empty(kinds.Except(Runners.Keys));
        Assert.Empty(Runners.Keys.Except(kinds));
    }

    [Fact]
    public void Golden_file_is_reproduced_by_its_script()
    {
        var (code, output) = OnlineRl.TestSupport.PythonProcess.Run(new[] { "-c", "import torch" }, TimeSpan.FromSeconds(60));
        if (code != 0)
            Assert.Fail("/usr/bin/python3 with torch is needed to check the golden values against their script "
                        + "(apt-get install -y python3 python3-torch); it failed: " + output);
        var script = Path.Combine(Golden.Folder, "make_golden.py");
        var outDir = Directory.CreateTempSubdirectory("onlinerl-algorithms-golden-");
        try
        {
            (code, output) = OnlineRl.TestSupport.PythonProcess.Run(new[] { script, outDir.FullName }, TimeSpan.FromSeconds(60));
            Assert.True(code == 0, "make_golden.py failed: " + output);
            var expected = File.ReadAllLines(Path.Combine(Golden.Folder, Golden.FileName));
            var actual = File.ReadAllLines(Path.Combine(outDir.FullName, Golden.FileName));
            var first = Enumerable.Range(0, Math.Min(expected.Length, actual.Length)).FirstOrDefault(i => expected[i] != actual[i], -1);
            Assert.True(first < 0 && expected.Length == actual.Length,
                first < 0
                    ? $"{Golden.FileName} has {expected.Length} lines, the script made {actual.Length}; rerun make_golden.py"
                    : $"{Golden.FileName} differs from the script's output at line {first + 1} (case {expected[first].Split(':')[0]}); rerun make_golden.py");
            Assert.Equal(File.ReadAllBytes(Path.Combine(Golden.Folder, Golden.FileName)), File.ReadAllBytes(Path.Combine(outDir.FullName, Golden.FileName)));
        }
        finally
        {
            outDir.Delete(recursive: true);
        }
    }
}
