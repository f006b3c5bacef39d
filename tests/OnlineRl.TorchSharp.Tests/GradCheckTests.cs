using F = TorchSharp.torch.nn.functional;

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// Autograd of the composite computations the project builds (log-probs, entropy, RMSNorm, attention with
/// the model's float mask, advantages, the clipped surrogate) against central finite differences in float64:
/// for the scalar L = sum(f(x) * c) with a fixed random cotangent c, dL/dx_k is compared with
/// (L(x + h e_k) - L(x - h e_k)) / 2h.
/// With h = 1e-6 the truncation error is O(h^2) and the rounding error about 1e-16 * |L| / h, both far below
/// the 1e-6 tolerance.
/// </summary>
public class GradCheckTests
{
    private const double Step = 1e-6;
    private const double Tolerance = 1e-6;

    // Next-token ids for the log-prob check [2, 3, 1].
    private static readonly Tensor Targets = torch.tensor(new long[] { 4, 0, 2, 1, 1, 3 }, [2, 3, 1]).DetachFromDisposeScope();

    [Fact]
    public void log_softmax_gather() =>
        Check(nameof(log_softmax_gather), x => x[0].log_softmax(-1).gather(-1, Targets).squeeze(-1), [2, 3, 5]);

    [Fact]
    public void softmax() => Check(nameof(softmax), x => x[0].softmax(-1), [3, 5]);

    [Fact]
    public void entropy() => Check(nameof(entropy), x =>
    {
        var logP = x[0].log_softmax(-1);
        return -(logP.exp() * logP).sum(-1);
    }, [3, 5]);

    [Fact]
    public void cross_entropy_ignore_index()
    {
        using var target = torch.tensor(new long[] { 3, -100, 0, 2, -100 });
        Check(nameof(cross_entropy_ignore_index), x => F.cross_entropy(x[0], target, ignore_index: -100), [5, 4]);
    }

    [Fact]
    public void silu_gate() => Check(nameof(silu_gate), x => x[0].silu() * x[1], [3, 4], [3, 4]);

    [Fact]
    public void logsigmoid() => Check(nameof(logsigmoid), x => F.logsigmoid(x[0] * 3.0), [3, 4]);

    [Fact]
    public void rms_norm() =>
        Check(nameof(rms_norm), x => x[1] * (x[0] * (x[0].square().mean([-1], keepdim: true) + 1e-6).rsqrt()), [3, 8], [8]);

    [Fact]
    public void scaled_dot_product_attention_with_a_float_mask()
    {
        const int T = 4, S = 6, D = 6;
        // The model's bias: two cached positions, causal, the first key of the second row padding.
        using var blocked = torch.ones(T, T, dtype: ScalarType.Bool).triu(1);
        using var bias = torch.zeros(2, 1, T, S, dtype: ScalarType.Float64);
        using (torch.no_grad())
        {
            bias.narrow(-1, 2, T).masked_fill_(blocked, float.MinValue);
            bias[1].narrow(-1, 0, 1).fill_(float.MinValue);
        }
        Check(nameof(scaled_dot_product_attention_with_a_float_mask),
            x => F.scaled_dot_product_attention(x[0], x[1], x[2], bias), [2, 2, T, D], [2, 2, S, D], [2, 2, S, D]);
    }

    [Fact]
    public void linear() => Check(nameof(linear), x => F.linear(x[0], x[1], x[2]), [3, 4], [5, 4], [5]);

    [Fact]
    public void linear_no_bias_3d() => Check(nameof(linear_no_bias_3d), x => F.linear(x[0], x[1]), [2, 3, 4], [5, 4]);

    [Fact]
    public void group_advantages() => Check(nameof(group_advantages), x =>
    {
        var r = x[0];
        return (r - r.mean([1], keepdim: true)) / (r.std(1, unbiased: true, keepdim: true) + 1e-4);
    }, [3, 5]);

    [Fact]
    public void clipped_surrogate()
    {
        // Log-probs near the proximal ones, so that some ratios fall inside the clip range and some outside.
        using var proximal = torch.tensor(new[] { 0.1, -0.3, 0.05, 0.4, -0.1, 0.2, -0.5, 0.0, 0.3, -0.2, 0.15, -0.05 }, [3, 4]);
        Check(nameof(clipped_surrogate), x =>
        {
            var ratio = (x[0] * 0.2 - proximal).exp();
            return -(ratio * x[1]).minimum(ratio.clamp(0.8, 1.2) * x[1]);
        }, [3, 4], [3, 4]);
    }

    [Fact]
    public void mse_loss() => Check(nameof(mse_loss), x => F.mse_loss(x[0], x[1]), [3, 4], [3, 4]);

    [Fact]
    public void finite_differences_catch_a_wrong_gradient()
    {
        // The checker itself must fail on a wrong gradient: x * detach(x) has gradient x, not 2x.
        var error = Assert.ThrowsAny<Exception>(() => Check("self-test", x => x[0] * x[0].detach(), [4]));
        Assert.Contains("autograd", error.Message);
    }

    /// <summary>Compares the autograd gradient of sum(f(x) * c) with central differences, for every input element.</summary>
    private static void Check(string name, Func<Tensor[], Tensor> f, params long[][] shapes)
    {
        using var scope = torch.NewDisposeScope();
        var random = new Random(StableSeed(name));
        var values = shapes.Select(s => Gaussian(random, s.Aggregate(1L, (a, b) => a * b))).ToArray();

        var inputs = values.Select((v, i) => torch.tensor(v, shapes[i], requires_grad: true)).ToArray();
        var output = f(inputs);
        Assert.Equal(ScalarType.Float64, output.dtype);
        var cotangent = torch.tensor(Gaussian(random, output.numel()), output.shape);
        (output * cotangent).sum().backward();

        for (var i = 0; i < inputs.Length; i++)
        {
            var analytic = (inputs[i].grad ?? throw new Xunit.Sdk.XunitException($"{name}: input {i} got no gradient")).data<double>().ToArray();
            for (var k = 0; k < values[i].Length; k++)
            {
                var original = values[i][k];
                values[i][k] = original + Step;
                var plus = Loss(f, values, shapes, cotangent);
                values[i][k] = original - Step;
                var minus = Loss(f, values, shapes, cotangent);
                values[i][k] = original;
                var numeric = (plus - minus) / (2 * Step);
                Assert.True(Math.Abs(numeric - analytic[k]) <= Tolerance * (1 + Math.Abs(numeric)),
                    $"{name}: d/d input {i}[{k}]: autograd {analytic[k]:R}, finite differences {numeric:R}");
            }
        }
    }

    private static double Loss(Func<Tensor[], Tensor> f, double[][] values, long[][] shapes, Tensor cotangent)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var inputs = values.Select((v, i) => torch.tensor(v, shapes[i])).ToArray();
        return (f(inputs) * cotangent).sum().ToDouble();
    }

    private static double[] Gaussian(Random random, long count)
    {
        var values = new double[count];
        for (var i = 0; i < count; i++)
        {
            // Box-Muller.
            var u = 1.0 - random.NextDouble();
            values[i] = Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * random.NextDouble());
        }
        return values;
    }

    private static int StableSeed(string text) => text.Aggregate(17, (h, c) => unchecked(h * 31 + c));
}
