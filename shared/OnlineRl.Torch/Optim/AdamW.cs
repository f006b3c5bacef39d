namespace OnlineRl.Torch.Optim;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter 2019) with decoupled weight decay. The update runs natively
/// (native/optim.cpp) in the same operation order as torch.optim.AdamW. The moment estimates are
/// ordinary tensors exposed through <see cref="State"/> so checkpoints can save and restore them.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly List<Tensor> parameters;
    private readonly Tensor?[] expAvg;
    private readonly Tensor?[] expAvgSq;
    private readonly long[] parameterSteps;

    /// <summary>Creates the optimizer over <paramref name="parameters"/> (PyTorch's defaults otherwise).</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2)
    {
        this.parameters = parameters.ToList();
        if (lr < 0) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be >= 0");
        if (beta1 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1)");
        if (beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1)");
        if (eps < 0) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be >= 0");
        LearningRate = lr;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weight_decay;
        expAvg = new Tensor?[this.parameters.Count];
        expAvgSq = new Tensor?[this.parameters.Count];
        parameterSteps = new long[this.parameters.Count];
    }

    /// <summary>The learning rate of the next step (schedules set it before each step).</summary>
    public double LearningRate { get; set; }

    /// <summary>Decay of the first moment.</summary>
    public double Beta1 { get; }

    /// <summary>Decay of the second moment.</summary>
    public double Beta2 { get; }

    /// <summary>Added to the denominator for stability.</summary>
    public double Eps { get; }

    /// <summary>Decoupled weight decay coefficient.</summary>
    public double WeightDecay { get; }

    /// <summary>Calls of <see cref="step"/> so far (what schedules count). Each parameter also keeps its own
    /// count of updates (it is skipped in steps where it has no gradient), used for its bias correction.</summary>
    public long StepCount { get; private set; }

    /// <summary>The parameters being optimized.</summary>
    public IReadOnlyList<Tensor> Parameters => parameters;

    /// <summary>Applies one update from the current gradients; parameters without a gradient are left alone.</summary>
    public void step()
    {
        for (var i = 0; i < parameters.Count; i++)
        {
            if (expAvg[i] is not null) continue;
            expAvg[i] = torch.zeros_like(parameters[i]).DetachFromDisposeScope();
            expAvgSq[i] = torch.zeros_like(parameters[i]).DetachFromDisposeScope();
        }
        StepCount++;
        using var p = new HandleArray(parameters);
        using var m = new HandleArray(expAvg!);
        using var v = new HandleArray(expAvgSq!);
        Native.Check(Native.orl_adamw_step(p.Pointers, m.Pointers, v.Pointers, parameterSteps, parameters.Count,
            LearningRate, Beta1, Beta2, Eps, WeightDecay));
    }

    /// <summary>Clears every parameter's gradient (set to none, as PyTorch 2 does by default).</summary>
    public void zero_grad()
    {
        foreach (var parameter in parameters) parameter.grad = null;
    }

    /// <summary>
    /// The optimizer state by name: "step" (a 0-dim int64), and "step.i", "exp_avg.i" and "exp_avg_sq.i"
    /// for each parameter i that has taken a step. The tensors are the optimizer's own; do not dispose them.
    /// </summary>
    public Dictionary<string, Tensor> State()
    {
        var state = new Dictionary<string, Tensor> { ["step"] = torch.scalar_tensor(StepCount, ScalarType.Int64).DetachFromDisposeScope() };
        for (var i = 0; i < parameters.Count; i++)
        {
            if (expAvg[i] is null) continue;
            state[$"step.{i}"] = torch.scalar_tensor(parameterSteps[i], ScalarType.Int64).DetachFromDisposeScope();
            state[$"exp_avg.{i}"] = expAvg[i]!;
            state[$"exp_avg_sq.{i}"] = expAvgSq[i]!;
        }
        return state;
    }

    /// <summary>Restores state saved by <see cref="State"/> (values are copied).</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state)
    {
        if (!state.TryGetValue("step", out var step)) throw new TorchException("optimizer state has no 'step' entry");
        StepCount = step.ToInt64();
        for (var i = 0; i < parameters.Count; i++)
        {
            var hasAvg = state.TryGetValue($"exp_avg.{i}", out var avg);
            var hasSq = state.TryGetValue($"exp_avg_sq.{i}", out var sq);
            if (hasAvg != hasSq) throw new TorchException($"optimizer state for parameter {i} has only one of exp_avg/exp_avg_sq");
            parameterSteps[i] = state.TryGetValue($"step.{i}", out var own) ? own.ToInt64() : hasAvg ? StepCount : 0;
            expAvg[i]?.Dispose();
            expAvgSq[i]?.Dispose();
            expAvg[i] = hasAvg ? avg!.to(parameters[i].device, parameters[i].dtype, copy: true).DetachFromDisposeScope() : null;
            expAvgSq[i] = hasSq ? sq!.to(parameters[i].device, parameters[i].dtype, copy: true).DetachFromDisposeScope() : null;
        }
    }

    /// <summary>Releases the moment tensors.</summary>
    public void Dispose()
    {
        foreach (var t in expAvg) t?.Dispose();
        foreach (var t in expAvgSq) t?.Dispose();
    }
}
