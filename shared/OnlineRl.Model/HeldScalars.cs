using TorchSharp;
using static TorchSharp.torch;

namespace OnlineRl.Model;

/// <summary>
/// Tensor arithmetic with every <see cref="Scalar"/> held until libtorch has returned. TorchSharp hands libtorch only
/// a Scalar's native handle and keeps no reference to it during the call, so a temporary Scalar (from
/// <c>tensor * 0.5</c>, or the <c>alpha = 1</c> that <c>a + b</c> makes inside <c>Tensor.add</c>) can be finalized
/// and freed by the finalizer thread while libtorch still reads it. Our services crashed on it under GC pressure;
/// the analyzer in shared/OnlineRl.Analyzers refuses such code at compile time and these are the replacements.
/// </summary>
public static class HeldScalars
{
    /// <summary>1: the <c>alpha</c> of every addition. Static, so it is never finalized.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>0, for comparisons and clamps.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary><paramref name="a"/> + <paramref name="b"/>.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><paramref name="a"/> + <paramref name="value"/>.</summary>
    public static Tensor Plus(this Tensor a, double value) => With(value.ToScalar(), held => a.add(held, One));

    /// <summary><paramref name="a"/> - <paramref name="value"/>.</summary>
    public static Tensor Minus(this Tensor a, double value) => With(value.ToScalar(), held => a.sub(held));

    /// <summary><paramref name="a"/> - <paramref name="value"/>, an integer: an int64 tensor stays int64.</summary>
    public static Tensor Minus(this Tensor a, long value) => With(value.ToScalar(), held => a.sub(held));

    /// <summary><paramref name="a"/>² (as <c>a * a</c>: <c>Tensor.square()</c> makes a temporary Scalar).</summary>
    public static Tensor Squared(this Tensor a) => a.mul(a);

    /// <summary><paramref name="a"/> * <paramref name="value"/>.</summary>
    public static Tensor Times(this Tensor a, double value) => With(value.ToScalar(), held => a.mul(held));

    /// <summary><paramref name="a"/> / <paramref name="value"/>.</summary>
    public static Tensor DividedBy(this Tensor a, double value) => With(value.ToScalar(), held => a.div(held));

    /// <summary>A one-element tensor's value (<c>ToDouble()</c> reads it through a temporary Scalar).</summary>
    public static double ItemAsDouble(this Tensor a)
    {
        if (a.dtype == ScalarType.Float64) return a.item<double>();
        if (a.dtype == ScalarType.Float32) return a.item<float>();
        using var wide = a.to(ScalarType.Float64);
        return wide.item<double>();
    }

    /// <summary>The int64 vector start, start + step, ... below stop.</summary>
    public static Tensor Range(long start, long stop, Device? device = null, long step = 1)
    {
        using var from = start.ToScalar();
        using var to = stop.ToScalar();
        using var by = step.ToScalar();
        return torch.arange(from, to, by, ScalarType.Int64, device);
    }

    /// <summary><paramref name="op"/> of <paramref name="held"/>, which stays alive until the op returns and is then freed.</summary>
    private static Tensor With(Scalar held, Func<Scalar, Tensor> op)
    {
        using (held) return op(held);
    }
}
