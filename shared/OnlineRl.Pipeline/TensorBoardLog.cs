namespace OnlineRl.Pipeline;

/// <summary>
/// The learner's curves for TensorBoard (<c>tensorboard --logdir runs</c>), written into the run's output folder as
/// the run goes (flushed after every step): every value of every step's metrics.csv row (<see cref="RunReport.StepValues"/>),
/// tagged <c>group/column</c> (<see cref="Tag"/>), plus the held-out accuracy before RL (at step 0) and after it.
/// </summary>
public sealed class TensorBoardLog : IDisposable
{
    private readonly TensorBoardWriter writer;

    private TensorBoardLog(string directory) => writer = new TensorBoardWriter(directory);

    /// <summary>A log in <see cref="RunConfig.OutputDir"/>; null when <see cref="RunConfig.Tensorboard"/> is off.</summary>
    /// <param name="config">The run.</param>
    /// <param name="resuming">
    /// True when a learner resumes from a checkpoint: the event files already in the folder hold the same run's earlier
    /// steps and stay. Otherwise they are a previous run's (replaced like its metrics.csv) and are deleted, so TensorBoard
    /// does not draw two runs' points on one curve.
    /// </param>
    public static TensorBoardLog? Open(RunConfig config, bool resuming = false)
    {
        if (!config.Tensorboard) return null;
        if (!resuming && Directory.Exists(config.OutputDir))
            foreach (var earlier in Directory.GetFiles(config.OutputDir, "events.out.tfevents.*")) File.Delete(earlier);
        return new TensorBoardLog(config.OutputDir);
    }

    /// <summary>The event file.</summary>
    public string FilePath => writer.FilePath;

    /// <summary>The held-out accuracy before RL, as <c>eval/heldout_accuracy</c> at step 0 (the curve's first point).</summary>
    public void InitialAccuracy(double accuracy) => Write(Tag("heldout_accuracy"), accuracy, 0);

    /// <summary>The held-out accuracy at the end of the run, as <c>eval/heldout_accuracy_final</c> at the last step.</summary>
    public void FinalAccuracy(double accuracy, long step) => Write(Tag("heldout_accuracy_final"), accuracy, step);

    /// <summary>Every value of a learner step, at its step.</summary>
    public void Step(StepReport report)
    {
        foreach (var (column, value) in RunReport.StepValues(report)) writer.AddScalar(Tag(column), (float)value, report.Step);
        writer.Flush();
    }

    /// <summary>
    /// The tag of a metrics.csv column: its group, a slash, and the column's name (which is also the last part of the
    /// Prometheus name where one exists, e.g. <c>policy/kl</c> and <c>onlinerl_learner_kl</c>). TensorBoard shows one
    /// section per group. Columns no group names (metrics added later) go to <c>learner/</c>.
    /// </summary>
    public static string Tag(string column) => column switch
    {
        "reward_mean" or "reward_std" or "dpo_reward_accuracy" or "dpo_reward_margin" => "reward/",
        "heldout_accuracy" or "heldout_accuracy_final" => "eval/",
        "loss" or "value_loss" => "loss/",
        "kl" or "clip_fraction" or "ratio_mean" or "importance_weight_max" => "policy/",
        "learning_rate" or "grad_norm" or "nonfinite_updates" or "skipped" => "optim/",
        "completion_tokens" or "completion_length_mean" or "groups_filtered" or "pairs" => "batch/",
        "policy_version" or "policy_lag" or "dropped_stale" or "duplicates" => "async/",
        "tokens_per_second" or "step_seconds" or "elapsed_s" => "perf/",
        _ => "learner/",
    } + column;

    /// <inheritdoc />
    public void Dispose() => writer.Dispose();

    private void Write(string tag, double value, long step)
    {
        writer.AddScalar(tag, (float)value, step);
        writer.Flush();
    }
}
