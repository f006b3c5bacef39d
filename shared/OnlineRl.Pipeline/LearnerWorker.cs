using System.Diagnostics;
using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Model;
using OnlineRl.Torch;
using OnlineRl.Training;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>Settings of a <see cref="LearnerWorker"/>.</summary>
public sealed record LearnerWorkerOptions
{
    /// <summary>Scored groups per update.</summary>
    public int PromptsPerStep { get; init; } = 32;
    /// <summary>Samples from a policy more than this many versions old are dropped (and counted).</summary>
    public int MaxPolicyLag { get; init; } = 1;
    /// <summary>Updates to run (0: until the time limit).</summary>
    public int Steps { get; init; } = 100;
    /// <summary>Stop after this long (null: no limit).</summary>
    public TimeSpan? TimeLimit { get; init; }
    /// <summary>Publish only LoRA adapter tensors (the base stays where the generators have it).</summary>
    public bool PublishAdaptersOnly { get; init; }
    /// <summary>Evaluate every N updates (0: never during the run).</summary>
    public int EvalEvery { get; init; }
}

/// <summary>What the learner reports after each update.</summary>
/// <param name="Step">Update number.</param>
/// <param name="PolicyVersion">Weights version published after it.</param>
/// <param name="ElapsedSeconds">Seconds since the learner started.</param>
/// <param name="PolicyLagMean">Mean version lag of the groups used.</param>
/// <param name="DroppedStale">Groups dropped for staleness so far.</param>
/// <param name="Duplicates">Redelivered groups ignored so far.</param>
/// <param name="HeldOutAccuracy">Held-out accuracy when evaluated at this step.</param>
/// <param name="Metrics">The learner's numbers for this step.</param>
/// <param name="Skipped">True when no update was made.</param>
public sealed record StepReport(long Step, long PolicyVersion, double ElapsedSeconds, double PolicyLagMean, long DroppedStale,
    long Duplicates, double? HeldOutAccuracy, IReadOnlyDictionary<string, double> Metrics, bool Skipped);

/// <summary>
/// Consumes scored groups, de-duplicates them by rollout id, drops samples older than the allowed
/// policy lag, runs an update per <see cref="LearnerWorkerOptions.PromptsPerStep"/> groups, publishes the
/// new weights and announces the version. Messages are acknowledged only after the update that used them.
/// </summary>
public sealed class LearnerWorker(IEventBus bus, WeightStore store, Learner learner, TransformerModel policy, LearnerWorkerOptions options,
    string runId, long startVersion, Func<double>? evaluate = null, Action<StepReport>? report = null)
{
    private readonly Publisher publisher = new(bus);
    private readonly HashSet<string> seen = new();
    private long retired;

    /// <summary>The newest published weights version.</summary>
    public long Version { get; private set; } = startVersion;

    /// <summary>Groups dropped because their policy was too old.</summary>
    public long DroppedStale { get; private set; }

    /// <summary>Redelivered groups that were ignored.</summary>
    public long Duplicates { get; private set; }

    /// <summary>Rollout ids trained on, in order (the sample ledger).</summary>
    public List<string> TrainedRollouts { get; } = new();

    /// <summary>Runs updates until the configured steps or time are used up.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (options.TimeLimit is { } time) limit.CancelAfter(time);
        var consumer = new Consumer<ScoredGroup>(bus, Topics.Scored, "learner", "learner",
            new ConsumerOptions { ServiceId = "learner", Stage = "learner", RunId = runId });
        var subscription = bus.Subscribe(Topics.Scored, "learner", "learner");
        await using var _ = subscription.ConfigureAwait(false);
        var buffer = new List<(ScoredGroup Group, BusMessage Raw)>();
        while (options.Steps == 0 || learner.StepCount < options.Steps)
        {
            BusMessage message;
            try
            {
                message = await subscription.ReceiveAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return; // time limit
            }
            var droppedBefore = DroppedStale;
            await consumer.ProcessDeferredAsync(subscription, message, (group, raw, _) =>
            {
                if (!seen.Add(group.Rollout.MessageId))
                {
                    Duplicates++;
                    return ValueTask.FromResult(true);
                }
                if (Version - group.Rollout.PolicyVersion > options.MaxPolicyLag)
                {
                    DroppedStale++;
                    PipelineMetrics.Shared.StaleDropped();
                    retired++;
                    return ValueTask.FromResult(true);
                }
                buffer.Add((group, raw));
                return ValueTask.FromResult(false);
            }, cancellationToken).ConfigureAwait(false);
            // Dropped prompts free admission slots: tell the feeder even without a new version.
            if (DroppedStale != droppedBefore) await AnnounceAsync(Version, learner.StepCount, cancellationToken).ConfigureAwait(false);
            if (buffer.Count < options.PromptsPerStep) continue;

            var used = buffer.Take(options.PromptsPerStep).ToList();
            buffer.RemoveRange(0, used.Count);
            var lag = used.Average(u => (double)(Version - u.Group.Rollout.PolicyVersion));
            var stats = learner.Step(used.Select(u => ScoredGroups.ToTrainingData(u.Group)).ToList());
            PipelineMetrics.Shared.LearnerStepped(stats.Metrics, stats.Skipped, used.Select(u => Version - u.Group.Rollout.PolicyVersion));
            var publishClock = Stopwatch.StartNew();
            retired += used.Count;
            var manifest = await PublishWeightsAsync(store, policy, options.PublishAdaptersOnly, stats.Step, cancellationToken).ConfigureAwait(false);
            Version = manifest.Version;
            PipelineMetrics.Shared.WeightsPublished(Version, publishClock.Elapsed);
            await AnnounceAsync(Version, stats.Step, cancellationToken).ConfigureAwait(false);
            foreach (var (group, raw) in used)
            {
                TrainedRollouts.Add(group.Rollout.MessageId);
                await subscription.AckAsync(raw, cancellationToken).ConfigureAwait(false);
            }
            double? accuracy = options.EvalEvery > 0 && stats.Step % options.EvalEvery == 0 && evaluate is not null ? evaluate() : null;
            report?.Invoke(new StepReport(stats.Step, Version, clock.Elapsed.TotalSeconds, lag, DroppedStale, Duplicates, accuracy, stats.Metrics, stats.Skipped));
            if (options.TimeLimit is { } t && clock.Elapsed >= t) return;
        }
    }

    /// <summary>
    /// Publishes <paramref name="policy"/>'s weights (all, or LoRA adapters only) as the next version. Scalar
    /// heads (the PPO critic's value head) stay with the learner: generators only sample.
    /// </summary>
    public static Task<WeightManifest> PublishWeightsAsync(WeightStore store, TransformerModel policy, bool adaptersOnly, long step,
        CancellationToken cancellationToken)
    {
        var tensors = adaptersOnly
            ? LoraAdapters.AdapterTensors(policy).Select(kv => KeyValuePair.Create(kv.Key["base_model.model.".Length..], kv.Value))
            : policy.state_dict();
        var sampled = tensors.Where(kv => !kv.Key.StartsWith("value_head.", StringComparison.Ordinal) && !kv.Key.StartsWith("score.", StringComparison.Ordinal));
        return store.PublishAsync(sampled, step, cancellationToken);
    }

    private async Task AnnounceAsync(long version, long step, CancellationToken cancellationToken)
    {
        var announcement = new PolicyVersion { Version = version, Step = step, ManifestLocation = $"weights:v{version}", RetiredPrompts = retired };
        await publisher.PublishAsync(Topics.Policy, announcement.Stamp(runId), $"policy-{version}", cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}
