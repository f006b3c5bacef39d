
namespace OnlineRl.Algorithms;

/// <summary>Which per-token estimator of KL[π_θ ‖ π_ref] to use; see <see cref="Kl"/>.</summary>
public enum KlEstimator
{
    /// <summary>Reference-free: the KL term is 0 and no reference log-probs are needed.</summary>
    None,
    /// <summary>k1 = log π_θ − log π_ref = −log r: unbiased, high variance, can be negative.</summary>
    K1,
    /// <summary>k2 = ½ (log r)²: biased, low variance, never negative.</summary>
    K2,
    /// <summary>k3 = (r − 1) − log r: unbiased, low variance, never negative (GRPO's choice).</summary>
    K3,
}

/// <summary>
/// Per-token KL estimators from log-probs of the sampled tokens.
///
/// J. Schulman, "Approximating KL Divergence" (2020, http://joschu.net/blog/kl-approx.html): for samples
/// x ~ q and r = p(x) / q(x), KL[q ‖ p] is estimated by
///     k1 = −log r,    k2 = ½ (log r)²,    k3 = (r − 1) − log r.
/// Here q = π_θ (the policy that sampled the tokens) and p = π_ref, so r = π_ref / π_θ and
///     log r = log π_ref − log π_θ.
/// DeepSeekMath (Shao et al. 2024, eq. 4) uses k3 in GRPO:
///     D_KL[π_θ ‖ π_ref] = π_ref/π_θ − log(π_ref/π_θ) − 1.
/// Gradients flow through <c>logProbs</c> only; the reference is a constant.
/// </summary>
public static class Kl
{
    /// <summary>
    /// The per-token estimate, [B, T] like <paramref name="logProbs"/> (not masked: reduce it with
    /// <see cref="Masked"/>). <paramref name="refLogProbs"/> may be null only for <see cref="KlEstimator.None"/>.
    /// </summary>
    public static Tensor PerToken(Tensor logProbs, Tensor? refLogProbs, KlEstimator estimator)
    {
        if (estimator == KlEstimator.None) return torch.zeros_like(logProbs);
        if (refLogProbs is null) throw new ArgumentNullException(nameof(refLogProbs), $"the {estimator} KL estimator needs reference log-probs");
        Shapes.Same(logProbs, refLogProbs, nameof(refLogProbs));

        using var scope = torch.NewDisposeScope();
        var logR = refLogProbs.detach() - logProbs;        // log r = log π_ref − log π_θ
        var kl = estimator switch
        {
            KlEstimator.K1 => -logR,                           // k1 = −log r
            KlEstimator.K2 => logR.Squared().Times(0.5),          // k2 = ½ (log r)²
            KlEstimator.K3 => logR.exp().Minus(1) - logR,          // k3 = (r − 1) − log r
            _ => throw new ArgumentOutOfRangeException(nameof(estimator), estimator, null),
        };
        return scope.MoveToOuter(kl);
    }
}
