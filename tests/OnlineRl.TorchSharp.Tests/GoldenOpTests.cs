using System.Text.Json;
using OnlineRl.Model;
using OnlineRl.TestSupport;
using F = TorchSharp.torch.nn.functional;

// The tests share process-wide state: the global random generator (seeded cases). Run them one at a time
// so that no test draws from it while another one expects a seeded stream.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// Every tensor op the project calls, through TorchSharp, against golden values made by golden/make_golden.py
/// with PyTorch: outputs, and the gradient of sum_i sum(out_i * cotangent_i) with respect to every input that
/// requires grad. Each case in golden/ops.json has a lambda below that mirrors the Python lambda of that name
/// and the call the project makes (make_golden.py names where).
/// </summary>
public class GoldenOpTests
{
    private static Tensor[] Pair((Tensor values, Tensor indices) r) => [r.values, r.indices];

    /// <summary>An op given a Scalar held through the call, as the project's code holds them.</summary>
    private static Tensor Held(double value, Func<Scalar, Tensor> op)
    {
        using var scalar = value.ToScalar();
        return op(scalar);
    }

    private static Tensor InPlace(Tensor x, Action<Tensor> update)
    {
        var y = x.clone();
        update(y);
        return y;
    }

    private static Tensor[] Seeded(long seed, Func<Tensor> make)
    {
        torch.manual_seed(seed);
        return [make()];
    }

    private static Tensor WithGenerator(ulong seed, Func<Generator, Tensor> make)
    {
        using var generator = new Generator(seed);
        return make(generator);
    }

    /// <summary>The model's attention: scaled_dot_product_attention with the float bias TransformerModel.Hidden builds.</summary>
    private static Tensor Attention(Tensor[] a)
    {
        var bias = torch.zeros(a[3].shape).masked_fill(a[3], float.MinValue);
        return F.scaled_dot_product_attention(a[0], a[1], a[2], bias);
    }

    /// <summary>A copy of <paramref name="x"/> made through its raw bytes (TorchSharp's bytes getter and setter).</summary>
    private static Tensor ThroughBytes(Tensor x)
    {
        var copy = torch.empty(x.shape, x.dtype);
        copy.bytes = x.bytes;
        return copy;
    }

    /// <summary>Case name to the C# call; the inputs arrive in the order of the Python lambda's parameters.</summary>
    internal static readonly Dictionary<string, Func<Tensor[], Tensor[]>> Ops = new()
    {
        // ---- element-wise, one input ----
        ["neg"] = a => [a[0].neg()],
        ["neg_operator"] = a => [-a[0]],
        ["exp"] = a => [a[0].exp()],
        ["rsqrt"] = a => [a[0].rsqrt()],
        ["square"] = a => [a[0].Squared()],
        ["sin"] = a => [a[0].sin()],
        ["cos"] = a => [a[0].cos()],
        ["sin_cos_large"] = a => [a[0].sin(), a[0].cos()],
        ["silu"] = a => [a[0].silu()],
        ["tanh"] = a => [a[0].tanh()],
        ["relu"] = a => [a[0].relu()],
        ["logsigmoid"] = a => [F.logsigmoid(a[0])],

        // ---- element-wise, two inputs ----
        ["add"] = a => [a[0].Plus(a[1])],
        ["sub"] = a => [a[0] - a[1]],
        ["mul"] = a => [a[0] * a[1]],
        ["div"] = a => [a[0] / a[1]],
        ["maximum"] = a => [a[0].maximum(a[1])],
        ["minimum"] = a => [a[0].minimum(a[1])],
        ["operators_mix"] = a => [(a[0] + a[1]) * a[2] - a[0] / a[2]],
        ["mul_broadcast_row"] = a => [a[0] * a[1]],
        ["mul_broadcast_outer"] = a => [a[0] * a[1]],
        ["mul_broadcast_heads"] = a => [a[0] * a[1]],
        ["sub_broadcast_keepdim"] = a => [a[0] - a[1]],
        ["div_broadcast_keepdim"] = a => [a[0] / a[1]],
        ["mul_0dim"] = a => [a[0] * a[1]],
        ["gt"] = a => [a[0].gt(a[1])],
        ["gt_broadcast_int64"] = a => [a[0].gt(a[1])],
        ["lt_broadcast"] = a => [a[0].lt(a[1])],
        ["ne_broadcast_int64"] = a => [a[0].ne(a[1])],
        ["eq_long_int64"] = a => [a[0].eq(0L)],
        ["gt_scalar"] = a => [a[0].gt(0.0)],
        ["lt_scalar"] = a => [a[0].lt(0.8)],
        ["logical_and"] = a => [a[0].logical_and(a[1])],
        ["logical_or_broadcast"] = a => [a[0].logical_or(a[1])],
        ["add_scalar"] = a => [a[0].Plus(1e-6)],
        ["sub_scalar"] = a => [a[0].Minus(5.0)],
        ["sub_int"] = a => [a[0].Minus(1)],
        ["sub_long_int64"] = a => [a[0].Minus(1L)],
        ["mul_scalar"] = a => [a[0].Times(-9.2)],
        ["rmul_scalar"] = a => [a[0].Times(0.1)],
        ["div_scalar"] = a => [a[0].DividedBy(0.7)],

        // ---- in place (on a clone) ----
        ["add__tensor"] = a => [InPlace(a[0], y => y.add_(a[1], HeldScalars.One))],
        // TorchSharp's zero_ is not differentiable (it records aten::zeros); the project zeroes under no_grad only.
        ["zero_"] = a => [a[0].zero_()],
        ["fill_"] = a => [InPlace(a[0], y => y.fill_(HeldScalars.One))],
        ["copy__narrow"] = a => [InPlace(a[0], y => y.narrow(2, 1, 2).copy_(a[1]))],
        ["index_put__rows_positions"] = a => [InPlace(a[0], y => y.index_put_(a[1],
            TensorIndex.Tensor(torch.tensor(new long[] { 2, 0 })), TensorIndex.Colon, TensorIndex.Tensor(torch.tensor(new long[] { 3, 1 }))))],
        ["copy__convert"] = a => [InPlace(a[0], y => y.copy_(a[1]))],
        ["normal_"] = _ => Seeded(6, () => torch.empty(4, 8).normal_(0.0, 0.02)),
        ["normal__small"] = _ => Seeded(7, () => torch.empty(2, 5).normal_(0.0, 0.02)),

        // ---- selection ----
        ["clamp"] = a => [Held(0.8, low => Held(1.2, high => a[0].clamp(low, high)))],
        ["clamp_min"] = a => [a[0].clamp_min(HeldScalars.One)],
        ["clamp_max"] = a => [Held(2.0, cap => a[0].clamp_max(cap))],
        ["clamp_min_int64"] = a => [a[0].clamp_min(HeldScalars.Zero)],
        ["clamp_tensor"] = a => [a[0].clamp(a[1], a[2])],
        ["masked_fill_min_float"] = a => [a[0].masked_fill(a[1], float.MinValue)],
        ["masked_fill_neg_inf"] = a => [a[0].masked_fill(a[1], double.NegativeInfinity)],

        // ---- reductions ----
        ["sum_all"] = a => [a[0].sum()],
        ["sum_dim"] = a => [a[0].sum(1)],
        ["sum_last"] = a => [a[0].sum(-1)],
        ["mean_all"] = a => [a[0].mean()],
        ["mean_dim_keepdim"] = a => [a[0].mean([1], keepdim: true)],
        ["mean_last_keepdim"] = a => [a[0].mean([-1], keepdim: true)],
        ["std_dim_keepdim"] = a => [a[0].std(1, unbiased: true, keepdim: true)],
        ["max_all"] = a => [a[0].max()],
        ["argmax_last"] = a => [a[0].argmax(-1)],
        ["argmax_dim_keepdim"] = a => [a[0].argmax(1, keepdim: true)],
        ["softmax_last"] = a => [a[0].softmax(-1)],
        ["softmax_masked"] = a => [a[0].softmax(-1)],
        ["log_softmax_last"] = a => [a[0].log_softmax(-1)],
        ["log_softmax_large"] = a => [a[0].log_softmax(-1)],
        ["cumsum_last"] = a => [a[0].cumsum(-1)],
        ["cumsum_int64"] = a => [a[0].cumsum(1)],
        ["topk_last"] = a => Pair(a[0].topk(3, -1)),
        ["sort_descending"] = a => Pair(a[0].sort(-1, descending: true)),

        // ---- linear algebra ----
        ["matmul_mat_mat"] = a => [a[0].matmul(a[1])],
        ["linear_bias"] = a => [F.linear(a[0], a[1], a[2])],
        ["linear_nobias_3d"] = a => [F.linear(a[0], a[1])],
        ["linear_bias_3d"] = a => [F.linear(a[0], a[1], a[2])],
        ["scaled_dot_product_attention"] = a => [Attention(a)],
        ["scaled_dot_product_attention_padding_row"] = a => [Attention(a)],
        ["scaled_dot_product_attention_decode"] = a => [Attention(a)],

        // ---- indexing ----
        ["embedding"] = a =>
        {
            // The model's nn.Embedding module with the golden weights; the gradient is read from its weight.
            var embedding = torch.nn.Embedding(a[1].size(0), a[1].size(1));
            using (torch.no_grad()) embedding.weight!.copy_(a[1]);
            a[1] = embedding.weight!;
            return [embedding.forward(a[0])];
        },
        ["index_select"] = a => [a[0].index_select(0, a[1])],
        ["index_select_4d"] = a => [a[0].index_select(0, a[1])],
        ["gather_last"] = a => [a[0].gather(-1, a[1])],
        ["gather_dim1"] = a => [a[0].gather(1, a[1])],
        ["scatter_bool"] = a => [a[0].scatter(-1, a[1], a[0])],
        ["scatter_add_dim1"] = a => [a[0].scatter_add(1, a[1], a[2])],
        ["select"] = a => [a[0].select(1, 2)],
        ["narrow"] = a => [a[0].narrow(-1, 2, 2)],
        ["multinomial"] = a => Seeded(11, () => a[0].multinomial(1)),
        ["multinomial_generator"] = a => [WithGenerator(7, g => a[0].multinomial(1, false, g))],
        ["multinomial_generator_masked"] = a => [WithGenerator(8, g => a[0].multinomial(1, false, g))],

        // ---- shape ----
        ["view"] = a => [a[0].view(2, 3, 2, 2)],
        ["view_infer"] = a => [a[0].view(2, 1, 3, -1)],
        ["reshape"] = a => [a[0].reshape(-1)],
        ["reshape_transposed"] = a => [a[0].transpose(1, 2).reshape(2, 3, 8)],
        ["repeat_kv"] = a => [a[0].unsqueeze(2).expand(2, 2, 3, 4, 5).reshape(2, 6, 4, 5)],
        ["transpose"] = a => [a[0].transpose(1, 2)],
        ["unsqueeze"] = a => [a[0].unsqueeze(1)],
        ["unsqueeze_last"] = a => [a[0].unsqueeze(-1)],
        ["squeeze_last"] = a => [a[0].squeeze(-1)],
        ["cat_last"] = a => [torch.cat(a, -1)],
        ["cat_dim1_int64"] = a => [torch.cat(a, 1)],
        ["cat_int64"] = a => [torch.cat(a)],
        ["stack_0dim"] = a => [torch.stack(a)],
        ["contiguous"] = a => [a[0].t().contiguous()],
        ["detach"] = a => [a[0].detach()],
        ["cpu"] = a => [a[0].cpu()],
        ["alias"] = a => [a[0].alias()],
        ["bytes_float32"] = a => [ThroughBytes(a[0])],
        ["bytes_bfloat16"] = a => [ThroughBytes(a[0])],

        // ---- creation ----
        ["tensor_int64"] = _ => [torch.tensor(new long[] { 1, -2, 3, 4, 5, -6 }, [2, 3])],
        ["tensor_float32"] = _ => [torch.tensor(new[] { 1.5f, -2.25f, 0.1f, 3.0f }, [2, 2])],
        ["tensor_float64_as_float32"] = _ => [torch.tensor(new[] { 0.1, 1.0 / 3.0, -2.5e-3, 1e-40 }, [4], ScalarType.Float32)],
        ["zeros"] = _ => [torch.zeros(2, 3)],
        ["ones_int64"] = _ => [torch.ones([2, 3], ScalarType.Int64)],
        ["ones_0dim"] = _ => [torch.ones(Array.Empty<long>())],
        ["zeros_like"] = a => [torch.zeros_like(a[0])],
        ["empty_shape"] = _ => [torch.tensor(torch.empty([2, 3, 4], ScalarType.BFloat16).shape)],
        ["arange_range_int64"] = _ => [HeldScalars.Range(2, 7)],
        ["arange_end_int64"] = _ => [HeldScalars.Range(0, 4)],
        ["arange_step2_int64"] = _ => [HeldScalars.Range(0, 8, step: 2)],
        ["arange_float32"] = _ => [HeldScalars.Range(1, 6).to(ScalarType.Float32)],
        ["linspace"] = _ => [torch.linspace(-1, 1, 7)],
        ["rand"] = _ => Seeded(42, () => torch.rand(3, 4)),
        ["randn"] = _ => Seeded(44, () => torch.randn(3, 4)),
        ["randint"] = _ => Seeded(47, () => torch.randint(0, 10, [3, 4])),
        ["randperm_generator"] = _ => [WithGenerator(5, g => torch.randperm(12, generator: g))],
        ["randperm_generator_large"] = _ => [WithGenerator(9, g => torch.randperm(40, generator: g))],

        // ---- conversion ----
        ["int64_to_float32"] = a => [a[0].to(ScalarType.Float32)],
        ["bool_to_float32"] = a => [a[0].to(ScalarType.Float32)],
        ["to_float64"] = a => [a[0].to(ScalarType.Float64, CPU)],
        ["float64_to_float32"] = a => [a[0].to(ScalarType.Float32)],
        ["to_bfloat16"] = a => [a[0].to(ScalarType.BFloat16)],
        ["bfloat16_to_float32"] = a => [a[0].to(ScalarType.Float32)],
        ["to_float16"] = a => [a[0].to(ScalarType.Float16)],
        ["float16_to_float32"] = a => [a[0].to(ScalarType.Float32)],

        // ---- neural-network functions ----
        ["dropout"] = a => Seeded(21, () => F.dropout(a[0], 0.3, training: true)),
        ["dropout_eval"] = a => [F.dropout(a[0], 0.3, training: false)],
        ["cross_entropy"] = a => [F.cross_entropy(a[0], a[1])],
        ["cross_entropy_ignore_index"] = a => [F.cross_entropy(a[0], a[1], ignore_index: -100)],
        ["mse_loss"] = a => [F.mse_loss(a[0], a[1])],
    };

    public static TheoryData<string> CaseNames()
    {
        var names = new TheoryData<string>();
        foreach (var name in Golden.Cases.EnumerateObject().Select(c => c.Name)) names.Add(name);
        return names;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Op_matches_pytorch(string name)
    {
        Assert.True(Ops.TryGetValue(name, out var op), $"golden case '{name}' has no C# lambda in GoldenOpTests.Ops");
        var spec = Golden.Cases.GetProperty(name);
        var tolerance = Golden.ToleranceOf(name);
        using var scope = torch.NewDisposeScope();

        var inputs = spec.GetProperty("inputs").EnumerateArray()
            .Select(i => Golden.MakeTensor(i, i.GetProperty("requires_grad").GetBoolean())).ToArray();
        var outputs = op(inputs);

        var expectedOutputs = spec.GetProperty("outputs").EnumerateArray().ToArray();
        Assert.Equal(expectedOutputs.Length, outputs.Length);
        for (var i = 0; i < outputs.Length; i++) Golden.AssertTensor(expectedOutputs[i], outputs[i], $"{name}: output {i}", tolerance);

        // Back-propagate sum_i sum(out_i * cotangent_i), as the script does.
        var cotangents = spec.GetProperty("cotangents").EnumerateArray().ToArray();
        Tensor? total = null;
        for (var i = 0; i < outputs.Length; i++)
        {
            var hasCotangent = cotangents[i].ValueKind != JsonValueKind.Null;
            Assert.True(hasCotangent == outputs[i].requires_grad,
                $"{name}: output {i} requires_grad is {outputs[i].requires_grad} but PyTorch's is {hasCotangent}");
            if (!hasCotangent) continue;
            var term = (outputs[i] * Golden.MakeTensor(cotangents[i], false)).sum();
            total = total is null ? term : total + term;
        }
        total?.backward();

        var grads = spec.GetProperty("grads").EnumerateArray().ToArray();
        for (var j = 0; j < inputs.Length; j++)
        {
            var grad = inputs[j].grad;
            if (grads[j].ValueKind == JsonValueKind.Null)
                Assert.True(grad is null, $"{name}: input {j} has a gradient but PyTorch's has none");
            else
                Golden.AssertTensor(grads[j], grad ?? throw new Xunit.Sdk.XunitException($"{name}: input {j} has no gradient"),
                    $"{name}: grad of input {j}", tolerance);
        }
    }

    [Fact]
    public void Every_golden_case_has_a_lambda_and_every_lambda_a_case()
    {
        var cases = Golden.Cases.EnumerateObject().Select(c => c.Name).ToHashSet();
        var withoutLambda = cases.Where(c => !Ops.ContainsKey(c)).Order().ToList();
        var withoutCase = Ops.Keys.Where(k => !cases.Contains(k)).Order().ToList();
        Assert.True(withoutLambda.Count == 0, "golden cases without a C# lambda: " + string.Join(", ", withoutLambda));
        Assert.True(withoutCase.Count == 0, "C# lambdas without a golden case: " + string.Join(", ", withoutCase));
        Assert.True(cases.Count >= 100, $"only {cases.Count} golden cases");
        var unknown = Golden.Tolerances.Keys.Where(k => !cases.Contains(k)).ToList();
        Assert.True(unknown.Count == 0, "tolerances for cases that do not exist: " + string.Join(", ", unknown));
    }

    [Fact]
    public void Golden_file_is_reproduced_by_its_script()
    {
        var script = Path.Combine(Golden.Folder, "make_golden.py");
        var outDir = Directory.CreateTempSubdirectory("onlinerl-golden-");
        try
        {
            var (code, output) = PythonProcess.Run(["-c", "import torch"], TimeSpan.FromSeconds(60));
            if (code != 0)
                Assert.Fail("python3-torch is missing: /usr/bin/python3 cannot import torch, so the golden values cannot be "
                            + "checked against their script (apt-get install -y python3-torch). Output: " + output);
            (code, output) = PythonProcess.Run([script, outDir.FullName], TimeSpan.FromSeconds(90));
            Assert.True(code == 0, "make_golden.py failed: " + output);
            var expected = File.ReadAllLines(Path.Combine(Golden.Folder, "ops.json"));
            var actual = File.ReadAllLines(Path.Combine(outDir.FullName, "ops.json"));
            var firstDifference = Enumerable.Range(0, Math.Min(expected.Length, actual.Length)).FirstOrDefault(i => expected[i] != actual[i], -1);
            Assert.True(firstDifference < 0 && expected.Length == actual.Length,
                firstDifference < 0
                    ? $"ops.json has {expected.Length} lines, the script made {actual.Length}"
                    : $"ops.json differs from the script's output at line {firstDifference + 1}: "
                      + $"{Golden.Head(expected[firstDifference])} vs {Golden.Head(actual[firstDifference])}; rerun make_golden.py");
            Assert.Equal(File.ReadAllBytes(Path.Combine(Golden.Folder, "ops.json")), File.ReadAllBytes(Path.Combine(outDir.FullName, "ops.json")));
        }
        finally
        {
            outDir.Delete(recursive: true);
        }
    }
}

/// <summary>Reads golden/ops.json and compares tensors with it.</summary>
internal static class Golden
{
    /// <summary>
    /// The cases whose libtorch 2.10 kernels (TorchSharp) round differently from the 1.13 ones that made the golden
    /// values (measured: by one or two float32 ulps), with the absolute plus relative tolerance they get and why.
    /// Every other case matches PyTorch bit for bit.
    /// </summary>
    internal static readonly Dictionary<string, (double Tolerance, string Why)> Tolerances = new()
    {
        ["matmul_mat_mat"] = (1e-6, Gemm),
        ["linear_bias"] = (1e-6, Gemm),
        ["linear_bias_3d"] = (1e-6, Gemm),
        ["linear_nobias_3d"] = (1e-6, Gemm),
        ["scaled_dot_product_attention"] = (1e-6, Attention),
        ["scaled_dot_product_attention_decode"] = (1e-6, Attention),
        ["scaled_dot_product_attention_padding_row"] = (1e-6, Attention),
        ["sin_cos_large"] = (1e-6, "sin and cos of arguments in the thousands: 2.10's vectorized kernels reduce the range differently"),
    };

    private const string Gemm = "2.10 multiplies matrices with MKL/oneDNN, the golden values come from 1.13 over OpenBLAS (other blocking, other rounding)";

    private const string Attention = "2.10 fuses softmax(q k^T / sqrt(D) + mask) v into one kernel with an online softmax; 1.13 has no such "
                                     + "op, its values are the composite of two GEMMs and a softmax";

    internal static double ToleranceOf(string name) => Tolerances.TryGetValue(name, out var t) ? t.Tolerance : 0;

    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder, "ops.json"))));

    internal static string Folder => Path.Combine(AppContext.BaseDirectory, "golden");

    internal static JsonElement Cases => Document.Value.RootElement.GetProperty("cases");

    internal static JsonElement Optim => Document.Value.RootElement.GetProperty("optim");

    internal static string Head(string text) => text.Length <= 200 ? text : text[..200] + "...";

    internal static double Number(JsonElement value) => GoldenJson.Number(value, "ops.json", booleans: true);

    internal static long[] Shape(JsonElement spec) => spec.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();

    internal static double[] Doubles(JsonElement spec) => spec.GetProperty("data").EnumerateArray().Select(Number).ToArray();

    private static readonly Dictionary<string, ScalarType> DTypes = new()
    {
        ["float32"] = ScalarType.Float32, ["float64"] = ScalarType.Float64, ["float16"] = ScalarType.Float16,
        ["bfloat16"] = ScalarType.BFloat16, ["int64"] = ScalarType.Int64, ["int32"] = ScalarType.Int32, ["bool"] = ScalarType.Bool,
    };

    internal static string Name(ScalarType dtype) => DTypes.FirstOrDefault(d => d.Value == dtype).Key ?? dtype.ToString();

    /// <summary>A tensor holding a golden tensor's values, in its dtype (a leaf that requires grad when asked).</summary>
    internal static Tensor MakeTensor(JsonElement spec, bool requiresGrad)
    {
        var shape = Shape(spec);
        var values = Doubles(spec);
        var name = spec.GetProperty("dtype").GetString()!;
        if (!DTypes.TryGetValue(name, out var dtype)) throw new NotSupportedException($"dtype {name} in ops.json");
        var tensor = dtype switch
        {
            ScalarType.Float64 => torch.tensor(values, shape),
            ScalarType.Int64 => torch.tensor(values.Select(v => (long)v).ToArray(), shape),
            ScalarType.Int32 => torch.tensor(values.Select(v => (int)v).ToArray(), shape),
            ScalarType.Bool => torch.tensor(values.Select(v => v != 0).ToArray(), shape),
            // float16 and bfloat16 values are exact float32 values: converting them back loses nothing.
            _ => torch.tensor(values.Select(v => (float)v).ToArray(), shape).to(dtype),
        };
        return requiresGrad ? tensor.requires_grad_() : tensor;
    }

    /// <summary>The values of a tensor as doubles (float16 and bfloat16 through float32, which holds them exactly).</summary>
    internal static double[] Read(Tensor t)
    {
        using var cpu = t.detach().cpu();
        return t.dtype switch
        {
            ScalarType.Float32 => cpu.data<float>().Select(v => (double)v).ToArray(),
            ScalarType.Float64 => cpu.data<double>().ToArray(),
            ScalarType.Float16 or ScalarType.BFloat16 => ReadAsFloat32(cpu),
            ScalarType.Int64 => cpu.data<long>().Select(v => (double)v).ToArray(),
            ScalarType.Int32 => cpu.data<int>().Select(v => (double)v).ToArray(),
            ScalarType.Bool => cpu.data<bool>().Select(v => v ? 1.0 : 0.0).ToArray(),
            var other => throw new NotSupportedException($"dtype {other}"),
        };
    }

    private static double[] ReadAsFloat32(Tensor t)
    {
        using var wide = t.to(ScalarType.Float32);
        return wide.data<float>().Select(v => (double)v).ToArray();
    }

    /// <summary>
    /// Same dtype, shape and values: bit for bit when <paramref name="tolerance"/> is 0, else floats within it
    /// absolute plus relative (NaN matches NaN, infinities must be equal; integers and bools always exactly).
    /// </summary>
    internal static void AssertTensor(JsonElement expected, Tensor actual, string what, double tolerance = 0)
    {
        var dtype = expected.GetProperty("dtype").GetString();
        Assert.True(dtype == Name(actual.dtype), $"{what}: dtype {Name(actual.dtype)}, expected {dtype}");
        var shape = Shape(expected);
        Assert.True(shape.SequenceEqual(actual.shape), $"{what}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", shape)}]");
        AssertValues(Doubles(expected), Read(actual), what, torch.is_floating_point(actual.dtype) ? tolerance : 0);
    }

    internal static void AssertValues(double[] expected, double[] actual, string what, double tolerance = 0)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (var k = 0; k < expected.Length; k++)
        {
            double e = expected[k], a = actual[k];
            var ok = double.IsNaN(e) ? double.IsNaN(a)
                : tolerance == 0 || double.IsInfinity(e) ? BitConverter.DoubleToInt64Bits(e) == BitConverter.DoubleToInt64Bits(a)
                : Math.Abs(a - e) <= tolerance + tolerance * Math.Abs(e);
            Assert.True(ok, $"{what}: element {k} is {a:R}, expected {e:R}" + (tolerance == 0 ? " (bit for bit)" : $" (tolerance {tolerance})"));
        }
    }
}
