namespace OnlineRl.Torch.Optim;

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

    /// <summary>Sets the optimizer's rate for the coming step (its <see cref="AdamW.StepCount"/>).</summary>
    public double Apply(AdamW optimizer)
    {
        optimizer.LearningRate = LearningRateAt(optimizer.StepCount);
        return optimizer.LearningRate;
    }
}
