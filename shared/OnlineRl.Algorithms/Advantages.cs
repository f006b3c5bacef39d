
namespace OnlineRl.Algorithms;

/// <summary>
/// Advantage estimators: GRPO's group-relative advantages, PPO's GAE, and masked whitening.
/// None of them is differentiated through: the results are detached.
/// </summary>
public static class Advantages
{
    /// <summary>
    /// Group-relative advantages from outcome rewards [groups, G] (G completions of one prompt per row).
    ///
    /// DeepSeekMath (Shao et al. 2024, §4.1.2, outcome supervision): Â_i = (r_i − mean(r)) / std(r), the same
    /// for every token of completion i. std is the sample standard deviation with Bessel's correction
    /// (divide by G − 1), as TRL and verl compute it (<c>torch.std</c>'s default); <paramref name="eps"/>
    /// (TRL's 1e-4) keeps a group of equal rewards at 0 instead of NaN: Â_i = (r_i − mean) / (std + eps).
    ///
    /// Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective", Dr. GRPO): dividing by std(r) biases the
    /// update towards questions that are too easy or too hard, so <paramref name="scaleByStd"/> = false gives
    /// Â_i = r_i − mean(r).
    ///
    /// A group of one has no baseline: its advantage is 0. Returns [groups, G] in the rewards' dtype.
    /// </summary>
    public static Tensor Grpo(Tensor rewards, bool scaleByStd = true, double eps = 1e-4)
    {
        Shapes.Rank(rewards, 2, nameof(rewards));
        using var scope = torch.NewDisposeScope();
        var r = rewards.detach();
        if (r.size(1) == 1) return scope.MoveToOuter(torch.zeros_like(r));
        var advantages = r - r.mean(new long[] { 1 }, keepdim: true);              // r_i − mean(r)
        if (scaleByStd)
            advantages = advantages / r.std(1, unbiased: true, keepdim: true).Plus(eps);  // / (std(r) + eps)
        return scope.MoveToOuter(advantages);
    }

    /// <summary>
    /// Generalized Advantage Estimation (Schulman et al. 2016, "High-Dimensional Continuous Control Using
    /// Generalized Advantage Estimation", §3) over per-token rewards and values [B, T]:
    ///     δ_t = r_t + γ V(s_{t+1}) − V(s_t),      Â_t = Σ_l (γλ)^l δ_{t+l} = δ_t + γλ Â_{t+1},
    /// and the value targets R_t = Â_t + V(s_t) (the λ-return).
    ///
    /// The steps of row b are its completion tokens (mask 1) in order; masked positions are not steps: the
    /// recursion passes over them (so prompt tokens, padding, or masked tool output in the middle of a
    /// completion are skipped), and they get Â = R = 0. After the last completion token V = 0 (the episode
    /// ends). For a prompt + completion + padding row this equals TRL's PPO (values and rewards zeroed at
    /// padding). Computed on the host in double precision; returned in the values' dtype and device.
    /// </summary>
    public static (Tensor Advantages, Tensor Returns) Gae(Tensor rewards, Tensor values, Tensor mask, double gamma, double lambda)
    {
        Shapes.Rank(values, 2, nameof(values));
        Shapes.Same(values, rewards, nameof(rewards));
        Shapes.Same(values, mask, nameof(mask));
        var (batch, steps) = ((int)values.size(0), (int)values.size(1));
        var r = Host(rewards);
        var v = Host(values);
        var m = Host(mask);
        var advantages = new double[batch * steps];
        var returns = new double[batch * steps];
        for (var b = 0; b < batch; b++)
        {
            double nextValue = 0, nextAdvantage = 0;                 // V and Â after the last step: 0
            for (var t = steps - 1; t >= 0; t--)
            {
                var i = b * steps + t;
                if (m[i] == 0) continue;                               // not a step of this row
                var delta = r[i] + gamma * nextValue - v[i];           // δ_t = r_t + γ V(s_{t+1}) − V(s_t)
                nextAdvantage = delta + gamma * lambda * nextAdvantage; // Â_t = δ_t + γλ Â_{t+1}
                advantages[i] = nextAdvantage;
                returns[i] = nextAdvantage + v[i];                     // R_t = Â_t + V(s_t)
                nextValue = v[i];
            }
        }
        var shape = values.shape;
        return (torch.tensor(advantages, shape, values.dtype, values.device), torch.tensor(returns, shape, values.dtype, values.device));
    }

    /// <summary>
    /// Whitening over the completion tokens (TRL's <c>masked_whiten</c>, as used by PPO for advantages):
    ///     x̂ = (x − mean_m(x)) / sqrt(var_m(x) + eps),
    /// with the masked mean and the masked variance with Bessel's correction (<see cref="Masked.Var"/>).
    /// <paramref name="shiftMean"/> = false adds the mean back (scale only). Masked positions are 0 in the result.
    /// </summary>
    public static Tensor Whiten(Tensor x, Tensor mask, bool shiftMean = true, double eps = 1e-8)
    {
        Shapes.Same(x, mask, nameof(mask));
        using var scope = torch.NewDisposeScope();
        var values = x.detach();
        var m = mask.to(values.dtype);
        var mean = Masked.Mean(values, m);
        var variance = Masked.Var(values, m, unbiased: true);
        var whitened = (values - mean) * variance.Plus(eps).rsqrt();  // (x − μ) / sqrt(σ² + eps)
        if (!shiftMean) whitened = whitened.Plus(mean);
        return scope.MoveToOuter(whitened * m);
    }

    private static double[] Host(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        return t.detach().to(ScalarType.Float64, CPU).data<double>().ToArray();
    }
}
