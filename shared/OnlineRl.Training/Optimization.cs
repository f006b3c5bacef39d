using TorchSharp.Modules;

namespace OnlineRl.Training;

/// <summary>
/// Linear warm-up from 0 to the peak rate over <see cref="WarmupSteps"/>, then a half-cosine decay to
/// <see cref="MinLearningRate"/> at <see cref="TotalSteps"/> (held there afterwards), the schedule of
/// most LLM training recipes (e.g. transformers' get_cosine_schedule_with_warmup when min is 0).
/// </summary>
public sealed record WarmupCosineSchedule(double PeakLearningRate, long WarmupSteps, long TotalSteps, double MinLearningRate = 0)
{
    /// <summary>The rate for step number <paramref name="step"/> (0-based: the first update is step 0).</summary>
    public double LearningRateAt(long step)
    {
        if (step < WarmupSteps) return PeakLearningRate * (step + 1) / WarmupSteps;
        if (step >= TotalSteps || TotalSteps <= WarmupSteps) return MinLearningRate;
        var progress = (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps);
        return MinLearningRate + (PeakLearningRate - MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}

/// <summary>
/// TorchSharp's AdamW (Loshchilov &amp; Hutter 2019) driven by a <see cref="WarmupCosineSchedule"/>, with the
/// count of steps taken (the schedule's position) and its state as plain tensors for checkpoints.
/// </summary>
public sealed class ScheduledAdamW : IDisposable
{
    private readonly AdamW optimizer;
    private readonly WarmupCosineSchedule schedule;

    /// <summary>AdamW over <paramref name="parameters"/> with PyTorch's betas and eps.</summary>
    public ScheduledAdamW(IEnumerable<Parameter> parameters, WarmupCosineSchedule schedule, double weightDecay)
    {
        Parameters = parameters.ToList();
        this.schedule = schedule;
        // TorchSharp's default weight decay is 0 (PyTorch's is 0.01): always pass it.
        optimizer = torch.optim.AdamW(Parameters, schedule.PeakLearningRate, weight_decay: weightDecay);
    }

    /// <summary>The parameters being optimized, in the order of <see cref="State"/>.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Calls of <see cref="Step"/> so far (what the schedule counts).</summary>
    public long StepCount { get; private set; }

    /// <summary>The learning rate the next <see cref="Step"/> uses.</summary>
    public double LearningRate => schedule.LearningRateAt(StepCount);

    /// <summary>Applies one update from the current gradients at the scheduled rate; parameters without a gradient are left alone.</summary>
    public void Step()
    {
        var rate = LearningRate;
        foreach (var group in optimizer.ParamGroups) group.LearningRate = rate;
        optimizer.step();
        StepCount++;
    }

    /// <summary>Clears every parameter's gradient.</summary>
    public void ZeroGrad() => optimizer.zero_grad();

    private List<AdamW.State> ParameterStates()
    {
        var states = optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        if (states.Count != Parameters.Count)
            throw new InvalidOperationException($"AdamW holds state for {states.Count} parameters, {Parameters.Count} are optimized");
        return states;
    }

    /// <summary>
    /// A snapshot for checkpoints. The moment tensors in it are the optimizer's own (valid until its next
    /// <see cref="Step"/> or <see cref="LoadState"/>): the caller neither disposes them nor pays for a copy.
    /// </summary>
    public AdamWState State()
    {
        var states = ParameterStates();
        return new AdamWState(StepCount, states.Select(s => s.step).ToArray(),
            states.Select(s => s.step > 0 ? s.exp_avg : null).ToArray(), states.Select(s => s.step > 0 ? s.exp_avg_sq : null).ToArray());
    }

    /// <summary>Restores a state taken by <see cref="State"/> (of an optimizer over the same parameter shapes); the moments are copied.</summary>
    public void LoadState(AdamWState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var states = ParameterStates();
        if (state.ParameterSteps.Count != states.Count || state.ExpAvg.Count != states.Count || state.ExpAvgSq.Count != states.Count)
            throw new InvalidDataException($"optimizer state is for {state.ParameterSteps.Count} parameters, this optimizer has {states.Count}");
        for (var i = 0; i < states.Count; i++)
        {
            if (state.ExpAvg[i] is null != state.ExpAvgSq[i] is null || (state.ExpAvg[i] is null && state.ParameterSteps[i] > 0))
                throw new InvalidDataException($"optimizer state for parameter {i} lacks exp_avg or exp_avg_sq");
            if (state.ExpAvg[i] is { } avg && !avg.shape.SequenceEqual(Parameters[i].shape))
                throw new InvalidDataException($"optimizer state for parameter {i} has shape [{string.Join(", ", avg.shape)}], the parameter [{string.Join(", ", Parameters[i].shape)}]");
        }
        using var noGrad = torch.no_grad();
        for (var i = 0; i < states.Count; i++)
        {
            states[i].step = state.ParameterSteps[i];
            if (state.ExpAvg[i] is { } avg) states[i].exp_avg.copy_(avg);
            else states[i].exp_avg.zero_();
            if (state.ExpAvgSq[i] is { } sq) states[i].exp_avg_sq.copy_(sq);
            else states[i].exp_avg_sq.zero_();
        }
        StepCount = state.StepCount;
    }

    /// <summary>Releases the optimizer and its moments.</summary>
    public void Dispose() => optimizer.Dispose();
}

/// <summary>
/// The state of a <see cref="ScheduledAdamW"/>: step counts as numbers and, per parameter, its moment
/// estimates (null for a parameter that has not taken a step yet).
/// </summary>
/// <param name="StepCount">Calls of <see cref="ScheduledAdamW.Step"/> (the schedule's position).</param>
/// <param name="ParameterSteps">Updates each parameter has taken (its bias correction).</param>
/// <param name="ExpAvg">First moments, one per parameter.</param>
/// <param name="ExpAvgSq">Second moments, one per parameter.</param>
public sealed record AdamWState(long StepCount, IReadOnlyList<long> ParameterSteps, IReadOnlyList<Tensor?> ExpAvg, IReadOnlyList<Tensor?> ExpAvgSq);
