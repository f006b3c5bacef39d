namespace OnlineRl.Algorithms.Tests;

/// <summary>Degenerate inputs (equal rewards, empty rows, ties), argument checks, equivalences and memory.</summary>
public class EdgeCaseTests
{
    private static Tensor T(float[] values, params long[] shape) => torch.tensor(values, shape);

    private static Tensor T(float[,] values)
    {
        var (rows, cols) = (values.GetLength(0), values.GetLength(1));
        var flat = new float[rows * cols];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < cols; j++) flat[i * cols + j] = values[i, j];
        return torch.tensor(flat, new long[] { rows, cols });
    }

    private static float[] Read(Tensor t) => t.detach().to(ScalarType.Float32).data<float>().ToArray();

    private static void AllFinite(Tensor t, string what) =>
        Assert.True(Read(t).All(float.IsFinite), $"{what} has non-finite values: {t}");

    // A [3, 4] batch: log-probs, old log-probs, a mask whose last row is empty.
    private static (Tensor LogProbs, Tensor Old, Tensor Mask) Batch(bool allMasked = false)
    {
        torch.manual_seed(7);
        var logProbs = (torch.rand(new long[] { 3, 4 }) * -3).requires_grad_();
        var old = logProbs.detach() + torch.randn(new long[] { 3, 4 }) * 0.3;
        var mask = allMasked ? torch.zeros(new long[] { 3, 4 }) : T(new float[,] { { 1, 1, 1, 1 }, { 0, 1, 1, 0 }, { 0, 0, 0, 0 } });
        return (logProbs, old, mask);
    }

    [Fact]
    public void Grpo_advantages_of_equal_rewards_are_zero_not_nan()
    {
        using var scope = torch.NewDisposeScope();
        var rewards = T(new float[,] { { 1, 1, 1, 1 }, { 0, 0, 0, 0 }, { 0, 1, 0, 1 } });
        foreach (var scale in new[] { true, false })
        {
            var a = Read(Advantages.Grpo(rewards, scaleByStd: scale));
            Assert.All(a.Take(8), v => Assert.Equal(0f, v));
            Assert.All(a, v => Assert.True(float.IsFinite(v)));
        }
        // A group of one has no baseline.
        var single = Advantages.Grpo(T(new float[] { 3, -1 }, 2, 1));
        Assert.Equal(new[] { 0f, 0f }, Read(single));
    }

    [Fact]
    public void Dynamic_sampling_keeps_groups_with_distinct_rewards()
    {
        float[] rewards = [1, 1, 1, 0, 1, 1, 0.5f, 0.5f, 0.5f];
        Assert.Equal(new[] { 1 }, Grpo.GroupsWithDistinctRewards(rewards, 3));
        using var scope = torch.NewDisposeScope();
        Assert.Equal(new[] { 1 }, Grpo.GroupsWithDistinctRewards(T(rewards, 3, 3)));
        Assert.Empty(Grpo.GroupsWithDistinctRewards(new float[] { 1, 2, 3 }, 1));
        Assert.Throws<ArgumentException>(() => Grpo.GroupsWithDistinctRewards(rewards, 4));
    }

    [Fact]
    public void Gae_and_whitening_of_empty_rows_are_zero()
    {
        using var scope = torch.NewDisposeScope();
        var values = torch.randn(new long[] { 2, 5 });
        var rewards = torch.randn(new long[] { 2, 5 });
        var mask = T(new float[,] { { 0, 1, 1, 1, 0 }, { 0, 0, 0, 0, 0 } });
        var (advantages, returns) = Advantages.Gae(rewards, values, mask, 0.99, 0.95);
        Assert.All(Read(advantages).Skip(5), v => Assert.Equal(0f, v));
        Assert.All(Read(returns).Skip(5), v => Assert.Equal(0f, v));
        Assert.Equal(0f, Read(advantages)[0]);

        var none = torch.zeros(new long[] { 2, 5 });
        var (a0, r0) = Advantages.Gae(rewards, values, none, 1, 1);
        Assert.All(Read(a0).Concat(Read(r0)), v => Assert.Equal(0f, v));

        Assert.All(Read(Advantages.Whiten(values, none)), v => Assert.Equal(0f, v));
        var one = T(new float[,] { { 0, 0, 1, 0, 0 }, { 0, 0, 0, 0, 0 } });
        Assert.All(Read(Advantages.Whiten(values, one)), v => Assert.Equal(0f, v));
        AllFinite(Advantages.Whiten(values, mask), "whitened");
    }

    [Fact]
    public void Gae_with_lambda_1_and_gamma_1_gives_reward_to_go_minus_value()
    {
        using var scope = torch.NewDisposeScope();
        var rewards = T(new float[,] { { 9, 1, 2, 3, 9 } });
        var values = T(new float[,] { { 9, 0.5f, 0.25f, 1, 9 } });
        var mask = T(new float[,] { { 0, 1, 1, 1, 0 } });
        var (advantages, returns) = Advantages.Gae(rewards, values, mask, 1, 1);
        Assert.Equal(new[] { 0f, 6 - 0.5f, 5 - 0.25f, 3 - 1, 0 }, Read(advantages));
        Assert.Equal(new[] { 0f, 6, 5, 3, 0 }, Read(returns));
    }

    [Theory]
    [InlineData(LossAggregation.TokenMean)]
    [InlineData(LossAggregation.SequenceMean)]
    [InlineData(LossAggregation.SumOverMaxTokens)]
    public void Policy_loss_of_a_fully_masked_batch_is_zero_with_zero_gradient(LossAggregation aggregation)
    {
        using var scope = torch.NewDisposeScope();
        var (logProbs, old, mask) = Batch(allMasked: true);
        var reference = logProbs.detach() + 0.1;
        var behaviour = old + 0.2;
        var options = new GrpoOptions { Aggregation = aggregation, Beta = 0.04 };
        var result = Grpo.Loss(logProbs, torch.randn(new long[] { 3 }), mask, options, old, reference, behaviour);
        Assert.Equal(0.0, result.Loss.ToDouble());
        result.Loss.backward();
        Assert.All(Read(logProbs.grad!), v => Assert.Equal(0f, v));
        var s = result.Stats;
        Assert.All(new[] { s.ClipFractionLow, s.ClipFractionHigh, s.RatioMean, s.KlMean, s.ImportanceWeightMean, s.ImportanceWeightMax },
            v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void Fully_masked_rows_do_not_change_the_token_mean_and_count_in_the_sequence_mean()
    {
        using var scope = torch.NewDisposeScope();
        var (logProbs, old, mask) = Batch();
        var advantages = T(new float[] { 1, -1, 5 }, 3);
        var full = Grpo.Loss(logProbs, advantages, mask, new GrpoOptions(), old).Loss.ToDouble();
        var firstTwo = Grpo.Loss(logProbs.narrow(0, 0, 2), advantages.narrow(0, 0, 2), mask.narrow(0, 0, 2), new GrpoOptions(), old.narrow(0, 0, 2)).Loss.ToDouble();
        Assert.Equal(firstTwo, full, 6);

        var sequence = new GrpoOptions { Aggregation = LossAggregation.SequenceMean };
        var fullSeq = Grpo.Loss(logProbs, advantages, mask, sequence, old).Loss.ToDouble();
        var firstTwoSeq = Grpo.Loss(logProbs.narrow(0, 0, 2), advantages.narrow(0, 0, 2), mask.narrow(0, 0, 2), sequence, old.narrow(0, 0, 2)).Loss.ToDouble();
        Assert.Equal(firstTwoSeq * 2 / 3, fullSeq, 6);
    }

    [Fact]
    public void Behaviour_log_probs_equal_to_the_proximal_ones_change_nothing()
    {
        using var scope = torch.NewDisposeScope();
        var (logProbs, old, mask) = Batch();
        var advantages = T(new float[] { 1, -1, 5 }, 3);
        var plain = Grpo.Loss(logProbs, advantages, mask, new GrpoOptions(), old);
        var corrected = Grpo.Loss(logProbs, advantages, mask, new GrpoOptions(), old, behaviourLogProbs: old.clone());
        Assert.Equal(plain.Loss.ToDouble(), corrected.Loss.ToDouble(), 6);
        Assert.Equal(1.0, corrected.Stats.ImportanceWeightMean, 6);
        Assert.Equal(1.0, corrected.Stats.ImportanceWeightMax, 6);
    }

    [Fact]
    public void Bool_and_float_masks_agree()
    {
        using var scope = torch.NewDisposeScope();
        var (logProbs, old, mask) = Batch();
        var advantages = T(new float[] { 1, -1, 5 }, 3);
        var a = Grpo.Loss(logProbs, advantages, mask, new GrpoOptions(), old).Loss.ToDouble();
        var b = Grpo.Loss(logProbs, advantages, mask.gt(0.5), new GrpoOptions(), old).Loss.ToDouble();
        Assert.Equal(a, b);
    }

    [Fact]
    public void Value_loss_and_kl_rewards_of_empty_rows_are_zero()
    {
        using var scope = torch.NewDisposeScope();
        var (logProbs, _, mask) = Batch();
        var values = torch.randn(new long[] { 3, 4 }).requires_grad_();
        var empty = torch.zeros(new long[] { 3, 4 });
        var loss = Ppo.ValueLoss(values, values.detach() + 0.5, torch.randn(new long[] { 3, 4 }), empty);
        Assert.Equal(0.0, loss.Loss.ToDouble());
        Assert.Equal(0.0, loss.ClipFraction);

        var rewards = Ppo.KlPenalizedRewards(T(new float[] { 1, 2, 3 }, 3), logProbs, logProbs.detach() - 0.1, mask, 0.1);
        var r = Read(rewards);
        Assert.All(r.Skip(8), v => Assert.Equal(0f, v));          // the empty row gets no score
        Assert.Equal(1 - 0.01f, r[3], 5);                          // score at the last token of row 0, plus -beta * 0.1
        Assert.Equal(2 - 0.01f, r[6], 5);                          // row 1 ends at t = 2
        Assert.Equal(0f, r[7]);
    }

    [Fact]
    public void Dpo_pairing_skips_ties_and_takes_the_first_extreme()
    {
        float[] rewards = [1, 1, 1, /**/ 0, 2, 2, /**/ 3, 0, 0, /**/ 5, 5, 5];
        var pairs = Dpo.PairsFromGroups(rewards, 3);
        Assert.Equal(new[] { new DpoPair(1, 4, 3), new DpoPair(2, 6, 7) }, pairs);
        Assert.Empty(Dpo.PairsFromGroups(new float[] { 1, 2 }, 1));
        Assert.Empty(Dpo.PairsFromGroups(ReadOnlySpan<float>.Empty, 2));
        Assert.Throws<ArgumentException>(() => Dpo.PairsFromGroups(rewards, 5));
    }

    [Fact]
    public void Arguments_are_checked()
    {
        using var scope = torch.NewDisposeScope();
        var (logProbs, old, mask) = Batch();
        var advantages = torch.zeros(new long[] { 3 });
        Assert.Throws<ArgumentException>(() => Grpo.Loss(logProbs, advantages, mask.narrow(1, 0, 3)));
        Assert.Throws<ArgumentException>(() => Grpo.Loss(logProbs, torch.zeros(new long[] { 4 }), mask));
        Assert.Throws<ArgumentNullException>(() => Grpo.Loss(logProbs, advantages, mask, new GrpoOptions { Beta = 0.1 }, old));
        Assert.Throws<ArgumentNullException>(() => Kl.PerToken(logProbs, null, KlEstimator.K3));
        Assert.Throws<ArgumentException>(() => Advantages.Gae(logProbs, logProbs, mask.narrow(1, 0, 2), 1, 1));
        Assert.Throws<ArgumentNullException>(() => Dpo.Loss(logProbs, mask, logProbs, mask, null, null));
        Assert.Throws<ArgumentException>(() => Dpo.Loss(logProbs, mask, logProbs, mask, null, null,
            new DpoOptions { LossType = DpoLossType.Ipo, LabelSmoothing = 0.1, ReferenceFree = true }));
        Assert.Throws<ArgumentException>(() => RewardModelLoss.BradleyTerry(torch.zeros(new long[] { 3 }), torch.zeros(new long[] { 4 })));
    }

    [Fact]
    public void Reference_free_dpo_equals_dpo_against_a_zero_reference()
    {
        using var scope = torch.NewDisposeScope();
        var (logProbs, _, mask) = Batch();
        var full = torch.ones(new long[] { 3, 4 });
        var rejected = logProbs.detach() - 0.3;
        var free = Dpo.Loss(logProbs, full, rejected, full, null, null, new DpoOptions { ReferenceFree = true });
        var zero = Dpo.Loss(logProbs, full, rejected, full, torch.zeros(new long[] { 3 }), torch.zeros(new long[] { 3, 4 }));
        Assert.Equal(zero.Loss.ToDouble(), free.Loss.ToDouble(), 6);
        Assert.Equal(1.0, free.Stats.RewardAccuracy);
    }

    [Fact]
    public void Functions_leave_only_their_results_alive()
    {
        var (logProbs, old, mask) = Batch();
        var values = torch.randn(new long[] { 3, 4 }, requires_grad: true);
        var oldValues = values.detach();
        var reference = logProbs.detach() - 0.2;
        var behaviour = old - 0.1;
        var logits = torch.randn(new long[] { 3, 4, 7 });
        var rewards = torch.randn(new long[] { 3, 4 });
        var (chosenRewards, rejectedRewards) = (rewards[0], rewards[1]);
        var ones = torch.ones(new long[] { 3 });
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var results = new List<Tensor>
        {
            Grpo.Loss(logProbs, ones, mask, new GrpoOptions { Beta = 0.1 }, old, reference, behaviour).Loss,
            Ppo.PolicyLoss(logProbs, old, rewards, mask).Loss,
            Ppo.ValueLoss(values, oldValues, rewards, mask).Loss,
            Ppo.KlPenalizedRewards(ones, logProbs, reference, mask, 0.1),
            Ppo.Entropy(logits),
            Kl.PerToken(logProbs, reference, KlEstimator.K2),
            Advantages.Grpo(rewards),
            Advantages.Whiten(rewards, mask),
            Dpo.Loss(logProbs, mask, logProbs, mask, reference, reference, new DpoOptions { SftWeight = 0.5 }).Loss,
            RewardModelLoss.BradleyTerry(chosenRewards, rejectedRewards).Loss,
            Masked.Var(rewards, mask),
        };
        var (advantages, returns) = Advantages.Gae(rewards, values, mask, 0.9, 0.9);
        results.Add(advantages);
        results.Add(returns);
        Grpo.GroupsWithDistinctRewards(rewards);
        Assert.Equal(before + results.Count, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        foreach (var t in results) t.Dispose();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        GC.KeepAlive(new[] { logProbs, old, mask, values, oldValues, reference, behaviour, logits, rewards, chosenRewards, rejectedRewards, ones });
    }
}
