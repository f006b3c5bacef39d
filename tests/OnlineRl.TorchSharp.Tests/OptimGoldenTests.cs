using System.Text.Json;
using TorchSharp.Modules;

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// AdamW, gradient clipping, Linear initialisation and state dicts against PyTorch (the "optim" section of
/// golden/ops.json, made by golden/make_golden.py).
/// </summary>
public class OptimGoldenTests
{
    private static JsonElement Optim(string name) => Golden.Optim.GetProperty(name);

    private static List<Parameter> MakeParameters(IEnumerable<JsonElement> specs)
    {
        var parameters = new List<Parameter>();
        using var scope = torch.NewDisposeScope();
        foreach (var spec in specs) parameters.Add(new Parameter(Golden.MakeTensor(spec, false)));
        return parameters;
    }

    private static void DisposeAll(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) t.Dispose();
    }

    [Fact]
    public void AdamW_five_steps_match_torch_optim_AdamW()
    {
        var golden = Optim("adamw");
        var hyper = golden.GetProperty("hyper");
        var parameters = MakeParameters(golden.GetProperty("initial").EnumerateArray());
        try
        {
            using var optimizer = new AdamW(parameters, hyper.GetProperty("lr").GetDouble(), hyper.GetProperty("beta1").GetDouble(),
                hyper.GetProperty("beta2").GetDouble(), hyper.GetProperty("eps").GetDouble(), hyper.GetProperty("weight_decay").GetDouble());
            var step = 0;
            foreach (var expected in golden.GetProperty("steps").EnumerateArray())
            {
                step++;
                using var scope = torch.NewDisposeScope();
                var grads = expected.GetProperty("grads").EnumerateArray().ToArray();
                for (var i = 0; i < parameters.Count; i++)
                    parameters[i].grad = grads[i].ValueKind == System.Text.Json.JsonValueKind.Null ? null : Golden.MakeTensor(grads[i], false);
                optimizer.step();
                var values = expected.GetProperty("params").EnumerateArray().ToArray();
                for (var i = 0; i < parameters.Count; i++)
                    Golden.AssertTensor(values[i], parameters[i].detach(), exact: false, $"step {step}: parameter {i}");
            }
            Assert.Equal(5, optimizer.StepCount);
            var state = optimizer.State();
            Assert.Equal(5, state.StepCount);
            Assert.Equal(new long[] { 5, 4 }, state.ParameterSteps);
            var expAvg = golden.GetProperty("exp_avg").EnumerateArray().ToArray();
            var expAvgSq = golden.GetProperty("exp_avg_sq").EnumerateArray().ToArray();
            for (var i = 0; i < parameters.Count; i++)
            {
                Golden.AssertTensor(expAvg[i], state.ExpAvg[i]!, exact: false, $"exp_avg {i}");
                Golden.AssertTensor(expAvgSq[i], state.ExpAvgSq[i]!, exact: false, $"exp_avg_sq {i}");
            }
        }
        finally
        {
            DisposeAll(parameters);
        }
    }

    [Fact]
    public void AdamW_leaves_parameters_without_gradient_alone()
    {
        using var scope = torch.NewDisposeScope();
        using var p = new Parameter(torch.ones([3]));
        using var q = new Parameter(torch.ones([2]));
        using var optimizer = new AdamW([p, q], lr: 0.1, weight_decay: 0.5);
        p.grad = torch.full([3], 0.5);
        optimizer.step();
        Assert.All(q.data<float>(), v => Assert.Equal(1f, v));
        Assert.All(p.data<float>(), v => Assert.NotEqual(1f, v));
    }

    [Fact]
    public void AdamW_state_loaded_into_a_fresh_optimizer_continues_bit_for_bit()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var start = new[] { torch.randn([4, 3]), torch.randn([5]) };
        var gradients = Enumerable.Range(0, 3).Select(_ => new[] { torch.randn([4, 3]), torch.randn([5]) }).ToArray();
        using var a = new Parameter(start[0]);
        using var b = new Parameter(start[1]);
        using var original = new AdamW([a, b], lr: 0.01, weight_decay: 0.1);
        for (var s = 0; s < 2; s++)
        {
            a.grad = gradients[s][0];
            b.grad = s == 0 ? null : gradients[s][1];
            original.step();
        }
        using var c = new Parameter(a.detach().clone());
        using var d = new Parameter(b.detach().clone());
        using var restored = new AdamW([c, d], lr: 0.01, weight_decay: 0.1);
        restored.LoadState(original.State());
        Assert.Equal(new long[] { 2, 1 }, restored.State().ParameterSteps);
        a.grad = gradients[2][0];
        b.grad = gradients[2][1];
        original.step();
        c.grad = gradients[2][0];
        d.grad = gradients[2][1];
        restored.step();
        Assert.Equal(a.data<float>(), c.data<float>());
        Assert.Equal(b.data<float>(), d.data<float>());
        Assert.Throws<TorchException>(() => new AdamW([c], lr: 0.01).LoadState(original.State()));
    }

    [Fact]
    public void clip_grad_norm_matches_torch()
    {
        var golden = Optim("clip_grad_norm");
        var grads = golden.GetProperty("grads").EnumerateArray().ToArray();
        foreach (var c in golden.GetProperty("cases").EnumerateArray())
        {
            var maxNorm = c.GetProperty("max_norm").GetDouble();
            var normType = Golden.Number(c.GetProperty("norm_type"));
            var what = $"clip_grad_norm_(max_norm={maxNorm}, norm_type={normType})";
            using var scope = torch.NewDisposeScope();
            var parameters = grads.Select(g => new Parameter(torch.zeros(Golden.Shape(g)))).ToList();
            try
            {
                for (var i = 0; i < grads.Length; i++) parameters[i].grad = Golden.MakeTensor(grads[i], false);
                var total = torch.nn.utils.clip_grad_norm_(parameters, maxNorm, normType);
                // PyTorch's total norm is a float32 tensor; the binding returns it as a double.
                Golden.AssertValues([c.GetProperty("total_norm").GetDouble()], [total], exact: false, what + ": total norm");
                var clipped = c.GetProperty("clipped").EnumerateArray().ToArray();
                for (var i = 0; i < grads.Length; i++) Golden.AssertTensor(clipped[i], parameters[i].grad!, exact: false, $"{what}: grad {i}");
            }
            finally
            {
                DisposeAll(parameters);
            }
        }
    }

    [Fact]
    public void Linear_initialisation_under_manual_seed_matches_torch_nn_Linear()
    {
        foreach (var c in Optim("linear_init").EnumerateArray())
        {
            var inFeatures = c.GetProperty("in_features").GetInt64();
            var dtype = c.GetProperty("dtype").GetString() == "float64" ? ScalarType.Float64 : ScalarType.Float32;
            var what = $"Linear({inFeatures}, {c.GetProperty("out_features").GetInt64()}, {dtype.Name()}) seed {c.GetProperty("seed").GetInt64()}";
            torch.manual_seed(c.GetProperty("seed").GetInt64());
            using var layer = new Linear(inFeatures, c.GetProperty("out_features").GetInt64(), c.GetProperty("bias").GetBoolean(), dtype);
            using var scope = torch.NewDisposeScope();
            // kaiming_uniform_(a=sqrt(5)) and the bias init both draw U(-1/sqrt(in), 1/sqrt(in)) with uniform_,
            // weight first: the same draws as the binding's Linear, so the values must be identical.
            Golden.AssertTensor(c.GetProperty("weight"), layer.weight.detach(), exact: true, what + ": weight");
            var bound = 1 / Math.Sqrt(inFeatures);
            Assert.All(Golden.Read(layer.weight.detach()), v => Assert.InRange(Math.Abs(v), 0, bound));
            if (c.GetProperty("bias").GetBoolean())
                Golden.AssertTensor(c.GetProperty("bias_values"), layer.bias!.detach(), exact: true, what + ": bias");
            else
                Assert.Null(layer.bias);
        }
    }

    /// <summary>The module whose PyTorch twin's state_dict keys are in the golden file.</summary>
    private sealed class TwoLayer : Module
    {
        public TwoLayer()
        {
            Fc1 = RegisterModule("fc1", new Linear(4, 3));
            Fc2 = RegisterModule("fc2", new Linear(3, 2, hasBias: false));
            Scale = RegisterBuffer("scale", torch.ones([2]));
            RegisterBuffer("cache", torch.zeros([2]), persistent: false);
        }

        public Linear Fc1 { get; }
        public Linear Fc2 { get; }
        public Tensor Scale { get; }
    }

    private static TwoLayer MakeTwoLayer(long seed)
    {
        torch.manual_seed(seed);
        return new TwoLayer();
    }

    [Fact]
    public void state_dict_has_the_keys_of_torch()
    {
        using var model = MakeTwoLayer(1);
        var expected = Optim("state_dict_keys").EnumerateArray().Select(k => k.GetString()!).ToList();
        Assert.Equal(expected, model.state_dict().Keys.Order(StringComparer.Ordinal).ToList());
    }

    [Fact]
    public void load_state_dict_round_trip_copies_every_value()
    {
        using var source = MakeTwoLayer(1);
        using var target = MakeTwoLayer(2);
        using (torch.no_grad()) source.Scale.fill_(3.0);
        Assert.NotEqual(source.Fc1.weight.data<float>(), target.Fc1.weight.data<float>());

        target.load_state_dict(source.state_dict());

        var sourceState = source.state_dict();
        foreach (var (name, tensor) in target.state_dict())
            Assert.Equal(sourceState[name].data<float>(), tensor.data<float>());
        Assert.True(target.Fc1.weight.requires_grad);
        // Values were copied, not shared.
        using (torch.no_grad()) source.Fc1.weight.add_(1.0);
        Assert.NotEqual(source.Fc1.weight.data<float>(), target.Fc1.weight.data<float>());
    }

    [Fact]
    public void load_state_dict_reports_missing_and_unexpected_keys()
    {
        using var source = MakeTwoLayer(1);
        using var target = MakeTwoLayer(2);
        using var extra = torch.zeros([1]);
        var state = new Dictionary<string, Tensor>(source.state_dict());
        state.Remove("fc2.weight");
        var error = Assert.Throws<TorchException>(() => target.load_state_dict(state));
        Assert.Contains("missing [fc2.weight]", error.Message);

        state = new Dictionary<string, Tensor>(source.state_dict()) { ["extra"] = extra };
        error = Assert.Throws<TorchException>(() => target.load_state_dict(state));
        Assert.Contains("unexpected [extra]", error.Message);

        // Not strict: the missing parameter keeps its value, the others are loaded.
        state = new Dictionary<string, Tensor>(source.state_dict());
        state.Remove("fc2.weight");
        var before = target.Fc2.weight.data<float>();
        target.load_state_dict(state, strict: false);
        Assert.Equal(before, target.Fc2.weight.data<float>());
        Assert.Equal(source.Fc1.weight.data<float>(), target.Fc1.weight.data<float>());
    }

    [Fact]
    public void load_state_dict_names_the_tensor_with_a_shape_mismatch()
    {
        using var source = MakeTwoLayer(1);
        using var target = MakeTwoLayer(2);
        using var wrong = torch.zeros([3, 5]);
        var state = new Dictionary<string, Tensor>(source.state_dict()) { ["fc1.weight"] = wrong };
        var error = Assert.Throws<TorchException>(() => target.load_state_dict(state));
        Assert.Contains("shape mismatch for 'fc1.weight'", error.Message);
        Assert.Contains("[3, 4]", error.Message);
        Assert.Contains("[3, 5]", error.Message);
    }
}
