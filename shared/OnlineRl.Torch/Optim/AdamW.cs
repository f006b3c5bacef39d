namespace OnlineRl.Torch.Optim;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter 2019) with decoupled weight decay. The update runs natively
/// (native/optim.cpp) in the same operation order as torch.optim.AdamW. <see cref="State"/> and
/// <see cref="LoadState"/> let checkpoints save and restore the step counts and moment estimates.
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
    /// A snapshot of the optimizer's state for checkpoints. It creates no tensors: the moment tensors in it
    /// are the optimizer's own (valid until its next <see cref="step"/>, <see cref="LoadState"/> or
    /// <see cref="Dispose"/>), so the caller neither disposes them nor pays for a copy.
    /// </summary>
    public AdamWState State() => new(StepCount, parameterSteps.ToArray(), expAvg.ToArray(), expAvgSq.ToArray());

    /// <summary>Restores a state taken by <see cref="State"/> (possibly of another optimizer over the same
    /// parameter shapes); the moment values are copied.</summary>
    public void LoadState(AdamWState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.ParameterSteps.Count != parameters.Count || state.ExpAvg.Count != parameters.Count || state.ExpAvgSq.Count != parameters.Count)
            throw new TorchException($"optimizer state is for {state.ParameterSteps.Count} parameters, this optimizer has {parameters.Count}");
        for (var i = 0; i < parameters.Count; i++)
        {
            if (state.ExpAvg[i] is null != state.ExpAvgSq[i] is null)
                throw new TorchException($"optimizer state for parameter {i} has only one of exp_avg/exp_avg_sq");
            if (state.ExpAvg[i] is { } avg && !avg.shape.SequenceEqual(parameters[i].shape))
                throw new TorchException($"optimizer state for parameter {i} has shape [{string.Join(", ", avg.shape)}], the parameter [{string.Join(", ", parameters[i].shape)}]");
        }
        StepCount = state.StepCount;
        for (var i = 0; i < parameters.Count; i++)
        {
            parameterSteps[i] = state.ParameterSteps[i];
            // Copy before disposing: the state may hold this optimizer's own tensors.
            var avg = state.ExpAvg[i]?.to(parameters[i].device, parameters[i].dtype, copy: true).DetachFromDisposeScope();
            var sq = state.ExpAvgSq[i]?.to(parameters[i].device, parameters[i].dtype, copy: true).DetachFromDisposeScope();
            expAvg[i]?.Dispose();
            expAvgSq[i]?.Dispose();
            expAvg[i] = avg;
            expAvgSq[i] = sq;
        }
    }

    /// <summary>Releases the moment tensors.</summary>
    public void Dispose()
    {
        foreach (var t in expAvg) t?.Dispose();
        foreach (var t in expAvgSq) t?.Dispose();
    }
}

/// <summary>
/// The state of an <see cref="AdamW"/> optimizer: step counts as numbers and, per parameter, its moment
/// estimates (null for a parameter that has not taken a step yet).
/// </summary>
/// <param name="StepCount">Calls of <see cref="AdamW.step"/> (what learning-rate schedules count).</param>
/// <param name="ParameterSteps">Updates each parameter has taken (its bias correction).</param>
/// <param name="ExpAvg">First moments, one per parameter.</param>
/// <param name="ExpAvgSq">Second moments, one per parameter.</param>
public sealed record AdamWState(long StepCount, IReadOnlyList<long> ParameterSteps, IReadOnlyList<Tensor?> ExpAvg, IReadOnlyList<Tensor?> ExpAvgSq);
