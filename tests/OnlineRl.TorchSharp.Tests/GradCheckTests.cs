using F = TorchSharp.torch.nn.functional;

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// Autograd of composite ops against central finite differences in float64: for the scalar
/// L = sum(f(x) * c) with a fixed random cotangent c, dL/dx_k is compared with (L(x + h e_k) - L(x - h e_k)) / 2h.
/// With h = 1e-6 the truncation error is O(h^2) and the rounding error about 1e-16 * |L| / h, both far below
/// the 1e-6 tolerance.
/// </summary>
public class GradCheckTests
{
    private const double Step = 1e-6;
    private const double Tolerance = 1e-6;

    [Fact]
    public void log_softmax() => Check(nameof(log_softmax), x => x[0].log_softmax(-1), [3, 5]);

    [Fact]
    public void softmax() => Check(nameof(softmax), x => x[0].softmax(0), [3, 5]);

    [Fact]
    public void logsumexp() => Check(nameof(logsumexp), x => x[0].logsumexp(1), [3, 5]);

    [Fact]
    public void logsumexp_dims_keepdim() => Check(nameof(logsumexp_dims_keepdim), x => x[0].logsumexp([0, 2], keepdim: true), [2, 3, 4]);

    [Fact]
    public void cross_entropy_label_smoothing()
    {
        using var target = torch.tensor(new long[] { 4, 0, 2, 1 });
        Check(nameof(cross_entropy_label_smoothing), x => F.cross_entropy(x[0], target, label_smoothing: 0.1), [4, 5]);
    }

    [Fact]
    public void cross_entropy_label_smoothing_ignore_index_sum()
    {
        using var target = torch.tensor(new long[] { 3, -100, 0, 2, -100 });
        Check(nameof(cross_entropy_label_smoothing_ignore_index_sum),
            x => F.cross_entropy(x[0], target, torch.nn.Reduction.Sum, label_smoothing: 0.2), [5, 4]);
    }

    [Fact]
    public void silu() => Check(nameof(silu), x => x[0].silu(), [3, 4]);

    [Fact]
    public void gelu() => Check(nameof(gelu), x => x[0].gelu(), [3, 4]);

    [Fact]
    public void gelu_tanh() => Check(nameof(gelu_tanh), x => x[0].gelu(tanhApproximation: true), [3, 4]);

    [Fact]
    public void logsigmoid() => Check(nameof(logsigmoid), x => F.logsigmoid(x[0] * 3.0), [3, 4]);

    [Fact]
    public void softplus() => Check(nameof(softplus), x => F.softplus(x[0], beta: 2.0), [3, 4]);

    [Fact]
    public void rms_norm() =>
        Check(nameof(rms_norm), x => x[0] * (x[0].square().mean(-1, keepdim: true) + 1e-6).rsqrt() * x[1], [3, 8], [8]);

    [Fact]
    public void causal_attention()
    {
        const int T = 4, D = 6;
        using var mask = torch.ones([T, T], torch.@bool).triu(1);
        Check(nameof(causal_attention), x =>
        {
            var scores = x[0].matmul(x[1].transpose(-2, -1)) / Math.Sqrt(D);
            return scores.masked_fill(mask, double.NegativeInfinity).softmax(-1).matmul(x[2]);
        }, [2, T, D], [2, T, D], [2, T, D]);
    }

    [Fact]
    public void linear() => Check(nameof(linear), x => F.linear(x[0], x[1], x[2]), [3, 4], [5, 4], [5]);

    [Fact]
    public void linear_no_bias_3d() => Check(nameof(linear_no_bias_3d), x => F.linear(x[0], x[1]), [2, 3, 4], [5, 4]);

    [Fact]
    public void var() => Check(nameof(var), x => x[0].var([1]), [3, 5]);

    [Fact]
    public void var_all_correction0_keepdim() => Check(nameof(var_all_correction0_keepdim), x => x[0].var(null, 0, keepdim: true), [3, 5]);

    [Fact]
    public void std() => Check(nameof(std), x => x[0].std(), [3, 5]);

    [Fact]
    public void std_dims() => Check(nameof(std_dims), x => x[0].std([0, 2], keepdim: true), [2, 3, 4]);

    [Fact]
    public void mse_loss() => Check(nameof(mse_loss), x => F.mse_loss(x[0], x[1]), [3, 4], [3, 4]);

    [Fact]
    public void norm() => Check(nameof(norm), x => x[0].norm(2, [1]), [3, 4]);

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
            var analytic = (inputs[i].grad ?? throw new Xunit.Sdk.XunitException($"{name}: input {i} got no gradient")).data<double>();
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
