
namespace OnlineRl.Algorithms;

/// <summary>
/// Reductions over the completion tokens of a [B, T] tensor: <c>mask</c> is 1 on completion tokens and 0 on
/// prompt and padding. Masked-out positions are multiplied by 0, so they may hold any finite value.
/// A reduction over no tokens at all is 0 (the count is clamped to at least 1), never NaN.
/// </summary>
public static class Masked
{
    /// <summary>Σ_t m_t x_t over every element (0-dim), or over <paramref name="dim"/>.</summary>
    public static Tensor Sum(Tensor x, Tensor mask, long? dim = null)
    {
        using var scope = torch.NewDisposeScope();
        var m = mask.to(x.dtype);
        var sum = dim is { } d ? (x * m).sum(d) : (x * m).sum();
        return scope.MoveToOuter(sum);
    }

    /// <summary>Σ m x / max(Σ m, 1) over every element (0-dim), or over <paramref name="dim"/>.</summary>
    public static Tensor Mean(Tensor x, Tensor mask, long? dim = null)
    {
        using var scope = torch.NewDisposeScope();
        var m = mask.to(x.dtype);
        var count = dim is { } d ? m.sum(d) : m.sum();
        var mean = Sum(x, m, dim) / count.clamp_min(HeldScalars.One);
        return scope.MoveToOuter(mean);
    }

    /// <summary>
    /// Variance of the masked elements around their masked mean (0-dim). <paramref name="unbiased"/> applies
    /// Bessel's correction n / (n - 1) as TRL's <c>masked_var</c> does; with n &lt;= 1 the variance is 0.
    /// </summary>
    public static Tensor Var(Tensor x, Tensor mask, bool unbiased = true)
    {
        using var scope = torch.NewDisposeScope();
        var m = mask.to(x.dtype);
        var centered = x - Mean(x, m);
        var variance = Mean(centered.Squared(), m);
        if (unbiased)
        {
            var n = m.sum();
            variance = variance * n / n.Minus(1).clamp_min(HeldScalars.One);
        }
        return scope.MoveToOuter(variance);
    }
}
