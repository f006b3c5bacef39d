
namespace OnlineRl.Algorithms;

/// <summary>How a per-token loss [B, T] is reduced to the scalar that is differentiated.</summary>
public enum LossAggregation
{
    /// <summary>
    /// DAPO (Yu et al. 2025, §3.3 "Token-Level Policy Gradient Loss"): Σ_{i,t} m L / Σ_{i,t} m, the mean over
    /// every completion token of the batch, so long completions weigh in proportion to their length.
    /// </summary>
    TokenMean,
    /// <summary>
    /// Original GRPO (Shao et al. 2024, eq. 3): (1/B) Σ_i (1/|o_i|) Σ_t L_{i,t}, each completion's token mean,
    /// then the mean over completions. A completion without tokens contributes 0 (and still counts in B).
    /// </summary>
    SequenceMean,
    /// <summary>
    /// Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training"): Σ_{i,t} m L / (B · L_max) with a constant L_max (the generation
    /// budget, <see cref="GrpoOptions.MaxCompletionLength"/>), removing the length bias of the 1/|o_i| factor.
    /// </summary>
    SumOverMaxTokens,
}

/// <summary>Settings of <see cref="Grpo.Loss"/>. The defaults are GRPO's; DAPO uses ClipHigh = 0.28.</summary>
public sealed record GrpoOptions
{
    /// <summary>ε_low: the ratio is clipped below at 1 − ε_low.</summary>
    public double ClipLow { get; init; } = 0.2;

    /// <summary>ε_high: the ratio is clipped above at 1 + ε_high (DAPO's clip-higher: 0.28).</summary>
    public double ClipHigh { get; init; } = 0.2;

    /// <summary>How the per-token loss is reduced; see <see cref="LossAggregation"/>.</summary>
    public LossAggregation Aggregation { get; init; } = LossAggregation.TokenMean;

    /// <summary>L_max of <see cref="LossAggregation.SumOverMaxTokens"/>; null uses T, the width of the batch.</summary>
    public long? MaxCompletionLength { get; init; }

    /// <summary>β of the per-token KL penalty β·KL[π_θ ‖ π_ref] added to the loss; 0 turns it off.</summary>
    public double Beta { get; init; }

    /// <summary>The KL estimator of the penalty and of the KL statistic (GRPO: k3).</summary>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.K3;

    /// <summary>
    /// C of truncated importance sampling: the behaviour correction weight is min(π_prox / π_behav, C).
    /// Null leaves it untruncated. Only used when behaviour log-probs are given.
    /// </summary>
    public double? MaxImportanceWeight { get; init; } = 2.0;
}

/// <summary>
/// Diagnostics of a clipped policy loss, each a mean over the completion tokens of the batch (0 when there
/// are none).
/// </summary>
/// <param name="ClipFractionLow">Tokens with ρ &lt; 1 − ε_low and Â &lt; 0 (the lower clip is active).</param>
/// <param name="ClipFractionHigh">Tokens with ρ &gt; 1 + ε_high and Â &gt; 0 (the upper clip is active).</param>
/// <param name="RatioMean">Mean of ρ = π_θ / π_old (π_prox when off-policy).</param>
/// <param name="KlMean">Mean of the per-token KL estimate; 0 without reference log-probs.</param>
/// <param name="ImportanceWeightMean">Mean of π_prox / π_behav before truncation; 1 without behaviour log-probs.</param>
/// <param name="ImportanceWeightMax">Largest π_prox / π_behav before truncation; 1 without behaviour log-probs.</param>
public sealed record PolicyLossStats(
    double ClipFractionLow,
    double ClipFractionHigh,
    double RatioMean,
    double KlMean,
    double ImportanceWeightMean,
    double ImportanceWeightMax);

/// <summary>A scalar loss to call <c>backward()</c> on, and its diagnostics.</summary>
/// <param name="Loss">The 0-dim loss, in the autograd graph of the current log-probs.</param>
/// <param name="Stats">Diagnostics (already read to the host).</param>
public sealed record PolicyLossResult(Tensor Loss, PolicyLossStats Stats);

/// <summary>
/// GRPO's clipped surrogate loss and its variants: DAPO (clip-higher, token-level loss, dynamic sampling),
/// Dr. GRPO (no length normalisation), and the decoupled PPO objective for off-policy (asynchronous) data.
///
/// DeepSeekMath (Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning", eq. 3):
///     J(θ) = E[ (1/G) Σ_i (1/|o_i|) Σ_t { min(ρ_{i,t} Â_{i,t}, clip(ρ_{i,t}, 1 − ε, 1 + ε) Â_{i,t}) − β D_KL[π_θ ‖ π_ref] } ],
///     ρ_{i,t} = π_θ(o_{i,t} | q, o_{i,&lt;t}) / π_θold(o_{i,t} | q, o_{i,&lt;t}) = exp(log π_θ − log π_θold).
/// DAPO (Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale", §3.1 "Clip-Higher"):
///     clip(ρ, 1 − ε_low, 1 + ε_high) with ε_high &gt; ε_low ("clip-higher").
/// Decoupled PPO (Hilton et al. 2021, "Batch size-invariance for policy optimization", the decoupled
/// policy objective; used for asynchronous RL by AReaL, Fu et al. 2025): with a behaviour policy π_behav that sampled the data and a proximal policy
/// π_prox that anchors the clip,
///     J(θ) = E_{π_behav}[ (π_prox / π_behav) · min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â) ],   ρ = π_θ / π_prox,
/// where the importance weight π_prox / π_behav is a constant, truncated at C (truncated importance sampling:
/// min(w, C)) to bound its variance. Here the proximal log-probs are the "old" log-probs.
/// The loss minimised is −J per token, plus β·KL per token, reduced as <see cref="LossAggregation"/> says.
/// </summary>
public static class Grpo
{
    /// <summary>
    /// The GRPO / DAPO / Dr. GRPO policy loss.
    /// </summary>
    /// <param name="logProbs">log π_θ of the sampled tokens [B, T], in the autograd graph.</param>
    /// <param name="advantages">Â: per completion [B] (GRPO, broadcast over tokens) or per token [B, T].</param>
    /// <param name="mask">[B, T]: 1 on completion tokens, 0 on prompt and padding.</param>
    /// <param name="options">Clip range, aggregation, KL penalty, truncation; null for the defaults.</param>
    /// <param name="oldLogProbs">log π_old (the proximal policy) [B, T]; null means on-policy: log π_θ detached, ρ = 1.</param>
    /// <param name="refLogProbs">log π_ref [B, T]; needed when β ≠ 0 (unless the estimator is None).</param>
    /// <param name="behaviourLogProbs">
    /// log π_behav [B, T] of the policy that sampled the tokens (e.g. the inference engine), when it differs from
    /// the proximal policy; null means they are the same and no importance weight is applied.
    /// </param>
    public static PolicyLossResult Loss(Tensor logProbs, Tensor advantages, Tensor mask, GrpoOptions? options = null,
        Tensor? oldLogProbs = null, Tensor? refLogProbs = null, Tensor? behaviourLogProbs = null)
    {
        options ??= new GrpoOptions();
        Shapes.Rank(logProbs, 2, nameof(logProbs));
        Shapes.Same(logProbs, mask, nameof(mask));
        if (options.Beta != 0 && options.KlEstimator != KlEstimator.None && refLogProbs is null)
            throw new ArgumentNullException(nameof(refLogProbs), $"a KL penalty (Beta = {options.Beta}) needs reference log-probs");

        using var scope = torch.NewDisposeScope();
        var m = mask.to(logProbs.dtype);
        var a = Shapes.PerToken(advantages, logProbs, nameof(advantages)).detach();
        var prox = oldLogProbs?.detach() ?? logProbs.detach();
        var terms = Surrogate(logProbs, prox, a, options.ClipLow, options.ClipHigh, behaviourLogProbs, options.MaxImportanceWeight);

        var perToken = terms.PerTokenLoss;                                     // −w · min(ρÂ, clip(ρ)Â)
        var kl = refLogProbs is null ? null : Kl.PerToken(logProbs, refLogProbs, options.KlEstimator);
        if (options.Beta != 0 && kl is not null) perToken = perToken.Plus(kl.Times(options.Beta));   // + β·KL_t

        var loss = Aggregate(perToken, m, options.Aggregation, options.MaxCompletionLength);
        var stats = Stats(terms, a, m, kl, options.ClipLow, options.ClipHigh);
        return new PolicyLossResult(scope.MoveToOuter(loss), stats);
    }

    /// <summary>
    /// The per-token clipped surrogate loss [B, T], −w · min(ρÂ, clip(ρ, 1 − ε_low, 1 + ε_high) Â) with
    /// ρ = exp(log π_θ − log π_prox) and w = min(exp(log π_prox − log π_behav), C) (w = 1 without behaviour
    /// log-probs). Not masked or reduced; PPO's policy loss is this with ε_low = ε_high.
    /// </summary>
    public static Tensor ClippedSurrogate(Tensor logProbs, Tensor proximalLogProbs, Tensor advantages, double clipLow, double clipHigh,
        Tensor? behaviourLogProbs = null, double? maxImportanceWeight = null)
    {
        using var scope = torch.NewDisposeScope();
        var a = Shapes.PerToken(advantages, logProbs, nameof(advantages)).detach();
        var terms = Surrogate(logProbs, proximalLogProbs.detach(), a, clipLow, clipHigh, behaviourLogProbs, maxImportanceWeight);
        return scope.MoveToOuter(terms.PerTokenLoss);
    }

    /// <summary>Reduces a per-token loss [B, T] to a scalar over the tokens where <paramref name="mask"/> is 1.</summary>
    public static Tensor Aggregate(Tensor perTokenLoss, Tensor mask, LossAggregation aggregation, long? maxCompletionLength = null)
    {
        Shapes.Rank(perTokenLoss, 2, nameof(perTokenLoss));
        Shapes.Same(perTokenLoss, mask, nameof(mask));
        using var scope = torch.NewDisposeScope();
        var m = mask.to(perTokenLoss.dtype);
        var loss = aggregation switch
        {
            // Σ_{i,t} m L / Σ_{i,t} m
            LossAggregation.TokenMean => Masked.Mean(perTokenLoss, m),
            // (1/B) Σ_i [ Σ_t m L / Σ_t m ]
            LossAggregation.SequenceMean => Masked.Mean(perTokenLoss, m, dim: 1).mean(),
            // Σ_{i,t} m L / (B · L_max)
            LossAggregation.SumOverMaxTokens => Masked.Sum(perTokenLoss, m).DividedBy(perTokenLoss.size(0) * (maxCompletionLength ?? perTokenLoss.size(1))),
            _ => throw new ArgumentOutOfRangeException(nameof(aggregation), aggregation, null),
        };
        return scope.MoveToOuter(loss);
    }

    /// <summary>
    /// DAPO's dynamic sampling (Yu et al. 2025, §3.2: 0 &lt; |{o_i : o_i correct}| &lt; G): the indices of the
    /// groups whose rewards are not all equal. A group of equal rewards has zero advantage for every completion
    /// and so no gradient; DAPO drops it and samples more. <paramref name="rewards"/> holds the groups one after
    /// the other, <paramref name="groupSize"/> each.
    /// </summary>
    public static int[] GroupsWithDistinctRewards(ReadOnlySpan<float> rewards, int groupSize)
    {
        if (groupSize < 1 || rewards.Length % groupSize != 0)
            throw new ArgumentException($"{rewards.Length} rewards do not split into groups of {groupSize}", nameof(groupSize));
        var kept = new List<int>();
        for (var g = 0; g < rewards.Length / groupSize; g++)
        {
            var group = rewards.Slice(g * groupSize, groupSize);
            var first = group[0];
            var distinct = false;
            foreach (var r in group) distinct |= r != first;
            if (distinct) kept.Add(g);
        }
        return kept.ToArray();
    }

    /// <summary><see cref="GroupsWithDistinctRewards(ReadOnlySpan{float}, int)"/> for rewards [groups, G].</summary>
    public static int[] GroupsWithDistinctRewards(Tensor rewards)
    {
        Shapes.Rank(rewards, 2, nameof(rewards));
        using var scope = torch.NewDisposeScope();
        var host = rewards.detach().to(ScalarType.Float32, CPU).data<float>().ToArray();
        return GroupsWithDistinctRewards(host, (int)rewards.size(1));
    }

    private sealed record SurrogateTerms(Tensor PerTokenLoss, Tensor Ratio, Tensor? ImportanceWeight);

    // a: [B, 1] or [B, T], detached; prox: detached.
    private static SurrogateTerms Surrogate(Tensor logProbs, Tensor prox, Tensor a, double clipLow, double clipHigh,
        Tensor? behaviourLogProbs, double? maxImportanceWeight)
    {
        Shapes.Same(logProbs, prox, "oldLogProbs");
        var ratio = (logProbs - prox).exp();                                   // ρ = exp(log π_θ − log π_prox)
        using var low = (1 - clipLow).ToScalar();
        using var high = (1 + clipHigh).ToScalar();
        var clipped = ratio.clamp(low, high);                                  // clip(ρ, 1 − ε_low, 1 + ε_high)
        var surrogate = (ratio * a).minimum(clipped * a);                      // min(ρÂ, clip(ρ)Â)
        if (behaviourLogProbs is null) return new SurrogateTerms(-surrogate, ratio, null);

        Shapes.Same(logProbs, behaviourLogProbs, nameof(behaviourLogProbs));
        var weight = (prox - behaviourLogProbs.detach()).exp();                // w = π_prox / π_behav (a constant)
        using var cap = (maxImportanceWeight ?? double.PositiveInfinity).ToScalar();
        var truncated = maxImportanceWeight is null ? weight : weight.clamp_max(cap);   // min(w, C)
        return new SurrogateTerms(-(truncated * surrogate), ratio, weight);
    }

    private static PolicyLossStats Stats(SurrogateTerms terms, Tensor a, Tensor m, Tensor? kl, double clipLow, double clipHigh)
    {
        using var noGrad = torch.no_grad();
        var ratio = terms.Ratio;
        using var lowBound = (1 - clipLow).ToScalar();
        using var highBound = (1 + clipHigh).ToScalar();
        var low = ratio.lt(lowBound).logical_and(a.lt(HeldScalars.Zero)).to(m.dtype);
        var high = ratio.gt(highBound).logical_and(a.gt(HeldScalars.Zero)).to(m.dtype);
        var one = torch.ones(Array.Empty<long>(), m.dtype, m.device);
        var w = terms.ImportanceWeight;
        var values = torch.stack(new[]
        {
            Masked.Mean(low, m),
            Masked.Mean(high, m),
            Masked.Mean(ratio, m),
            kl is null ? torch.zeros_like(one) : Masked.Mean(kl, m),
            w is null ? one : Masked.Mean(w, m),
            w is null ? one : (w * m).max(),
        }).to(ScalarType.Float64, CPU).data<double>().ToArray();
        return new PolicyLossStats(values[0], values[1], values[2], values[3], values[4], values[5]);
    }
}
