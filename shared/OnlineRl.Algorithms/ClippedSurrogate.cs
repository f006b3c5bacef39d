
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
/// The clipped surrogate objective that PPO introduced and GRPO reuses, with the decoupled off-policy correction.
///
/// PPO (Schulman et al. 2017, eq. 7):  L^CLIP = E_t[ min(ρ_t Â_t, clip(ρ_t, 1 − ε, 1 + ε) Â_t) ],  ρ_t = π_θ / π_old.
/// DAPO (Yu et al. 2025, §3.1 "Clip-Higher"): clip(ρ, 1 − ε_low, 1 + ε_high) with ε_high &gt; ε_low.
/// Decoupled PPO (Hilton et al. 2021, "Batch size-invariance for policy optimization"; used for asynchronous RL by
/// AReaL, Fu et al. 2025): with a behaviour policy π_behav that sampled the data and a proximal policy π_prox that
/// anchors the clip,
///     J(θ) = E_{π_behav}[ (π_prox / π_behav) · min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â) ],   ρ = π_θ / π_prox,
/// where the importance weight π_prox / π_behav is a constant, truncated at C (min(w, C)) to bound its variance.
/// The per-token loss is −J; <see cref="Aggregate"/> reduces it as <see cref="LossAggregation"/> says.
/// </summary>
public static class ClippedSurrogate
{
    /// <summary>The per-token terms: the loss −w · min(ρÂ, clip(ρ)Â), ρ, and w before truncation (null without behaviour log-probs).</summary>
    internal sealed record Terms(Tensor PerTokenLoss, Tensor Ratio, Tensor? ImportanceWeight);

    /// <summary>
    /// The per-token clipped surrogate loss [B, T], −w · min(ρÂ, clip(ρ, 1 − ε_low, 1 + ε_high) Â) with
    /// ρ = exp(log π_θ − log π_prox) and w = min(exp(log π_prox − log π_behav), C) (w = 1 without behaviour
    /// log-probs). <paramref name="advantages"/> [B, 1] or [B, T] and <paramref name="prox"/> are detached.
    /// </summary>
    internal static Terms PerToken(Tensor logProbs, Tensor prox, Tensor advantages, double clipLow, double clipHigh,
        Tensor? behaviourLogProbs, double? maxImportanceWeight)
    {
        Shapes.Same(logProbs, prox, "oldLogProbs");
        var a = advantages;
        var ratio = (logProbs - prox).exp();                                   // ρ = exp(log π_θ − log π_prox)
        using var low = (1 - clipLow).ToScalar();
        using var high = (1 + clipHigh).ToScalar();
        var clipped = ratio.clamp(low, high);                                  // clip(ρ, 1 − ε_low, 1 + ε_high)
        var surrogate = (ratio * a).minimum(clipped * a);                      // min(ρÂ, clip(ρ)Â)
        if (behaviourLogProbs is null) return new Terms(-surrogate, ratio, null);

        Shapes.Same(logProbs, behaviourLogProbs, nameof(behaviourLogProbs));
        var weight = (prox - behaviourLogProbs.detach()).exp();                // w = π_prox / π_behav (a constant)
        using var cap = (maxImportanceWeight ?? double.PositiveInfinity).ToScalar();
        var truncated = maxImportanceWeight is null ? weight : weight.clamp_max(cap);   // min(w, C)
        return new Terms(-(truncated * surrogate), ratio, weight);
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

    /// <summary>Clip fractions, ratio, KL and importance-weight statistics of <paramref name="terms"/> over the mask <paramref name="m"/>.</summary>
    internal static PolicyLossStats Stats(Terms terms, Tensor a, Tensor m, Tensor? kl, double clipLow, double clipHigh)
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
