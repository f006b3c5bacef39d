using System.Text.Json;
using TorchSharp.Modules;

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// TorchSharp's AdamW, gradient clipping, Linear initialisation and state dicts against PyTorch (the "optim"
/// section of golden/ops.json, made by golden/make_golden.py). OnlineRl.Training's ScheduledAdamW wraps this
/// AdamW and the learners clip with this clip_grad_norm_.
/// </summary>
public class OptimGoldenTests
{
    /// <summary>
    /// TorchSharp's AdamW runs the same tensor ops as PyTorch's (foreach=False) AdamW, but after a few steps the
    /// last bit of a few elements differs (measured: one float32 ulp): 2.10's element-wise kernels round
    /// differently from 1.13's.
    /// </summary>
    private const double OptimizerTolerance = 1e-6;

    private static JsonElement Optim(string name) => Golden.Optim.GetProperty(name);

    private static List<Parameter> MakeParameters(IEnumerable<JsonElement> specs) =>
        specs.Select(spec => new Parameter(Golden.MakeTensor(spec, false))).ToList();

    /// <summary>Replays the golden steps (gradients in, parameters out) and checks the per-parameter state after them.</summary>
    private static void ReplayAdamW(JsonElement golden, Func<List<Parameter>, AdamW> makeOptimizer)
    {
        using var scope = torch.NewDisposeScope();
        var parameters = MakeParameters(golden.GetProperty("initial").EnumerateArray());
        using var optimizer = makeOptimizer(parameters);
        var step = 0;
        foreach (var expected in golden.GetProperty("steps").EnumerateArray())
        {
            step++;
            var grads = expected.GetProperty("grads").EnumerateArray().ToArray();
            for (var i = 0; i < parameters.Count; i++)
                parameters[i].grad = grads[i].ValueKind == JsonValueKind.Null ? null : Golden.MakeTensor(grads[i], false);
            optimizer.step();
            var values = expected.GetProperty("params").EnumerateArray().ToArray();
            for (var i = 0; i < parameters.Count; i++)
                Golden.AssertTensor(values[i], parameters[i], $"step {step}: parameter {i}", OptimizerTolerance);
        }

        // The per-parameter state ScheduledAdamW reads for checkpoints: a parameter skipped once has one step fewer.
        var states = optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.Equal(golden.GetProperty("step_counts").EnumerateArray().Select(s => s.GetInt64()), states.Select(s => s.step));
        var expAvg = golden.GetProperty("exp_avg").EnumerateArray().ToArray();
        var expAvgSq = golden.GetProperty("exp_avg_sq").EnumerateArray().ToArray();
        for (var i = 0; i < parameters.Count; i++)
        {
            Golden.AssertTensor(expAvg[i], states[i].exp_avg, $"exp_avg {i}", OptimizerTolerance);
            Golden.AssertTensor(expAvgSq[i], states[i].exp_avg_sq, $"exp_avg_sq {i}", OptimizerTolerance);
        }
    }

    [Fact]
    public void AdamW_matches_torch_optim_AdamW_and_skips_a_parameter_without_gradient()
    {
        var golden = Optim("adamw");
        var hyper = golden.GetProperty("hyper");
        ReplayAdamW(golden, parameters => torch.optim.AdamW(parameters, hyper.GetProperty("lr").GetDouble(),
            hyper.GetProperty("beta1").GetDouble(), hyper.GetProperty("beta2").GetDouble(), hyper.GetProperty("eps").GetDouble(),
            hyper.GetProperty("weight_decay").GetDouble()));
    }

    [Fact]
    public void AdamW_with_only_rate_and_weight_decay_given_matches_PyTorch_defaults()
    {
        // ScheduledAdamW passes the rate and the weight decay and relies on TorchSharp's betas and eps being
        // PyTorch's (0.9, 0.999, 1e-8). The weight decay must be given: TorchSharp's default is 0, PyTorch's 0.01.
        var golden = Optim("adamw_defaults");
        var hyper = golden.GetProperty("hyper");
        ReplayAdamW(golden, parameters => torch.optim.AdamW(parameters, hyper.GetProperty("lr").GetDouble(),
            weight_decay: hyper.GetProperty("weight_decay").GetDouble()));
    }

    [Fact]
    public void AdamW_state_written_into_a_fresh_optimizer_continues_bit_for_bit()
    {
        // ScheduledAdamW restores a checkpoint by writing step counts and moments into the entries of
        // state_dict().State, which must be the optimizer's live state (not copies).
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var start = new[] { torch.randn(4, 3), torch.randn(5) };
        var gradients = Enumerable.Range(0, 3).Select(_ => new[] { torch.randn(4, 3), torch.randn(5) }).ToArray();
        var original = start.Select(t => new Parameter(t.clone())).ToList();
        using var first = torch.optim.AdamW(original, 0.01, weight_decay: 0.1);
        for (var s = 0; s < 2; s++)
        {
            original[0].grad = gradients[s][0];
            original[1].grad = s == 0 ? null : gradients[s][1];
            first.step();
        }
        var restored = original.Select(p => new Parameter(p.detach().clone())).ToList();
        using var second = torch.optim.AdamW(restored, 0.01, weight_decay: 0.1);
        var saved = first.state_dict().State.Cast<AdamW.State>().ToList();
        var fresh = second.state_dict().State.Cast<AdamW.State>().ToList();
        using (torch.no_grad())
        {
            for (var i = 0; i < 2; i++)
            {
                fresh[i].step = saved[i].step;
                fresh[i].exp_avg.copy_(saved[i].exp_avg);
                fresh[i].exp_avg_sq.copy_(saved[i].exp_avg_sq);
            }
        }
        Assert.Equal(new long[] { 2, 1 }, second.state_dict().State.Cast<AdamW.State>().Select(s => s.step));

        for (var i = 0; i < 2; i++)
        {
            original[i].grad = gradients[2][i];
            restored[i].grad = gradients[2][i];
        }
        first.step();
        second.step();
        for (var i = 0; i < 2; i++) Assert.Equal(original[i].data<float>().ToArray(), restored[i].data<float>().ToArray());
    }

    [Fact]
    public void clip_grad_norm_matches_torch()
    {
        var golden = Optim("clip_grad_norm");
        var grads = golden.GetProperty("grads").EnumerateArray().ToArray();
        foreach (var c in golden.GetProperty("cases").EnumerateArray())
        {
            var maxNorm = c.GetProperty("max_norm").GetDouble();
            var without = c.GetProperty("without_grad") is { ValueKind: JsonValueKind.Number } w ? w.GetInt32() : -1;
            var nan = c.GetProperty("nan").GetBoolean();
            var what = $"clip_grad_norm_(max_norm={maxNorm}), parameter without gradient {without}, NaN {nan}";
            using var scope = torch.NewDisposeScope();
            var parameters = grads.Select(g => new Parameter(torch.zeros(Golden.Shape(g)))).ToList();
            for (var i = 0; i < grads.Length; i++)
                if (i != without) parameters[i].grad = Golden.MakeTensor(grads[i], false);
            if (nan) parameters[2].grad![0, 1] = float.NaN;

            var total = torch.nn.utils.clip_grad_norm_(parameters, maxNorm);

            // PyTorch returns the norm as a float32 tensor, TorchSharp as a double.
            Golden.AssertValues([Golden.Number(c.GetProperty("total_norm"))], [(float)total], what + ": total norm");
            var clipped = c.GetProperty("clipped").EnumerateArray().ToArray();
            for (var i = 0; i < grads.Length; i++)
            {
                if (clipped[i].ValueKind == JsonValueKind.Null) Assert.True(parameters[i].grad is null, $"{what}: grad {i} appeared");
                else Golden.AssertTensor(clipped[i], parameters[i].grad!, $"{what}: grad {i}");
            }
        }
    }

    [Fact]
    public void Linear_initialisation_under_manual_seed_matches_torch_nn_Linear()
    {
        // LoRA's A matrices are nn.Linear layers: they must start as PEFT's do (kaiming_uniform_(a=sqrt(5))).
        foreach (var c in Optim("linear_init").EnumerateArray())
        {
            var inFeatures = c.GetProperty("in_features").GetInt64();
            var outFeatures = c.GetProperty("out_features").GetInt64();
            var hasBias = c.GetProperty("bias").GetBoolean();
            var dtype = c.GetProperty("dtype").GetString() == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
            var what = $"Linear({inFeatures}, {outFeatures}, {dtype}) seed {c.GetProperty("seed").GetInt64()}";
            torch.manual_seed(c.GetProperty("seed").GetInt64());
            using var layer = torch.nn.Linear(inFeatures, outFeatures, hasBias, dtype: dtype);
            Golden.AssertTensor(c.GetProperty("weight"), layer.weight!, what + ": weight");
            if (hasBias) Golden.AssertTensor(c.GetProperty("bias_values"), layer.bias!, what + ": bias");
            else Assert.Null(layer.bias);
        }
    }

    /// <summary>The module whose PyTorch twin's state_dict keys are in the golden file.</summary>
    private sealed class TwoLayer : torch.nn.Module
    {
        public TwoLayer() : base(nameof(TwoLayer))
        {
            register_module("fc1", Fc1 = torch.nn.Linear(4, 3));
            register_module("fc2", Fc2 = torch.nn.Linear(3, 2, hasBias: false));
            register_buffer("scale", Scale = torch.ones(2));
            register_buffer("cache", torch.zeros(2), persistent: false);
        }

        public Linear Fc1 { get; }
        public Linear Fc2 { get; }
        public Tensor Scale { get; }

        // The project registers every part explicitly (OnlineRl.Model.ExplicitModule), not by reflection.
        protected override void RegisterComponents() { }
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
    public void load_state_dict_copies_every_value_and_not_strict_keeps_what_is_missing()
    {
        // PolicySetup.Copy loads the entries a copy has (strict: false) into a model with other weights.
        using var source = MakeTwoLayer(1);
        using var target = MakeTwoLayer(2);
        using (torch.no_grad()) source.Scale.fill_(3.0);
        var before = target.Fc2.weight!.data<float>().ToArray();
        Assert.NotEqual(source.Fc1.weight!.data<float>().ToArray(), target.Fc1.weight!.data<float>().ToArray());

        var state = source.state_dict();
        state.Remove("fc2.weight");
        var (missing, unexpected) = target.load_state_dict(state, strict: false);

        Assert.Equal(["fc2.weight"], missing);
        Assert.Empty(unexpected);
        Assert.Equal(before, target.Fc2.weight!.data<float>().ToArray());
        Assert.Equal(source.Fc1.weight!.data<float>().ToArray(), target.Fc1.weight!.data<float>().ToArray());
        Assert.Equal(new float[] { 3, 3 }, target.Scale.data<float>().ToArray());
        Assert.True(target.Fc1.weight!.requires_grad);
        // Values were copied, not shared.
        using (torch.no_grad()) source.Fc1.weight!.add_(1.0);
        Assert.NotEqual(source.Fc1.weight!.data<float>().ToArray(), target.Fc1.weight!.data<float>().ToArray());
    }

    [Fact]
    public void load_state_dict_strict_refuses_a_missing_tensor_and_another_shape()
    {
        // Learner checkpoints and the saved reference policy are loaded strictly: a state of another
        // architecture must fail, not load in part (the callers name the file).
        using var target = MakeTwoLayer(2);
        using var source = MakeTwoLayer(1);
        var missing = source.state_dict();
        missing.Remove("fc2.weight");
        Assert.Throws<InvalidOperationException>(() => target.load_state_dict(missing));
        using var wide = torch.zeros(3, 5);
        var reshaped = source.state_dict();
        reshaped["fc1.weight"] = wide;
        var error = Assert.ThrowsAny<System.Runtime.InteropServices.ExternalException>(() => target.load_state_dict(reshaped));
        Assert.Contains("must match the size", error.Message);
    }
}
