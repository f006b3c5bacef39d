using System.Diagnostics;
using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Model;
using TorchSharp;
using static TorchSharp.torch;
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
    /// <summary>With a <see cref="LearnerStateStore"/>: checkpoint (and only then acknowledge) every N updates.</summary>
    public int CheckpointEvery { get; init; } = 1;
    /// <summary>
    /// The number of prompts the feeder publishes in all (<c>task.max_prompts</c>; 0: endless). Once every one of them
    /// is trained, dropped or waiting, the learner trains what waits (a smaller last batch) and stops: prompts dropped
    /// as stale are not replaced, so waiting for full batches would wait forever.
    /// </summary>
    public long MaxPrompts { get; init; }
    /// <summary>This learner's consumer id and dead-letter service name.</summary>
    public string ServiceId { get; init; } = "learner";
}

/// <summary>What the learner reports after each update.</summary>
/// <param name="Step">Update number.</param>
/// <param name="PolicyVersion">Weights version published after it.</param>
/// <param name="ElapsedSeconds">Seconds since the learner started (held-out evaluations included).</param>
/// <param name="PolicyLagMean">Mean version lag of the groups used.</param>
/// <param name="DroppedStale">Groups dropped for staleness so far.</param>
/// <param name="Duplicates">Redelivered groups ignored so far.</param>
/// <param name="HeldOutAccuracy">Held-out accuracy when evaluated at this step.</param>
/// <param name="Metrics">The learner's numbers for this step.</param>
/// <param name="Skipped">True when no update was made.</param>
/// <param name="EvaluationSeconds">Seconds of <see cref="ElapsedSeconds"/> spent in held-out evaluations so far.</param>
/// <param name="TokenLags">The trained completion tokens by version lag (lag -> tokens): with in-flight weight swaps the
/// tokens of one group span versions, so this is finer than <paramref name="PolicyLagMean"/>.</param>
public sealed record StepReport(long Step, long PolicyVersion, double ElapsedSeconds, double PolicyLagMean, long DroppedStale,
    long Duplicates, double? HeldOutAccuracy, IReadOnlyDictionary<string, double> Metrics, bool Skipped, double EvaluationSeconds = 0,
    IReadOnlyDictionary<long, long>? TokenLags = null);

/// <summary>
/// Consumes scored groups, de-duplicates them by prompt id, drops samples older than the allowed policy lag,
/// runs an update per <see cref="LearnerWorkerOptions.PromptsPerStep"/> groups, publishes the new weights and
/// announces the version.
/// </summary>
/// <remarks>
/// <para>Crash safety (with a <see cref="LearnerStateStore"/>): a consumed message (trained on, dropped as
/// stale, or a duplicate) is acknowledged only after the checkpoint that records it is durable. A kill at any
/// moment therefore leaves every message either in the newest checkpoint (skipped when redelivered) or
/// unacknowledged (redelivered and trained on by the restarted learner, which resumes from that checkpoint).
/// A restarted learner publishes its restored weights as a new version above every version published
/// before, so versions never go back. Without a store, messages are acknowledged right after their update.</para>
/// <para>Graceful stop (cancellation): the updates made are checkpointed and acknowledged; groups waiting
/// for an update are handed back (nacked). An exception (or a kill) skips all of that.</para>
/// </remarks>
public sealed class LearnerWorker(IEventBus bus, WeightStore store, Learner learner, TransformerModel policy, LearnerWorkerOptions options,
    string runId, long startVersion, Func<double>? evaluate = null, Action<StepReport>? report = null,
    LearnerStateStore? stateStore = null, LedgerWriter? ledger = null, IGeneratorStatusReporter? generators = null)
{
    private readonly Publisher publisher = new(bus);
    private readonly List<string> droppedIds = new();
    private readonly HashSet<string> durable = new();
    private readonly HashSet<string> consumed = new();
    private readonly List<BusMessage> pendingAcks = new();
    private readonly List<(ScoredGroup Group, BusMessage Raw)> buffer = new();
    private readonly HashSet<string> buffered = new();
    private long lastCheckpointStep;
    private long commits;

    /// <summary>The newest published weights version.</summary>
    public long Version { get; private set; } = startVersion;

    /// <summary>Groups dropped because their policy was too old.</summary>
    public long DroppedStale => droppedIds.Count;

    /// <summary>Redelivered or repeated groups (a prompt already consumed or waiting) that were ignored.</summary>
    public long Duplicates { get; private set; }

    /// <summary>Prompt ids trained on, in order (restored from the checkpoint after a restart).</summary>
    public List<string> TrainedPrompts { get; } = new();

    /// <summary>
    /// The size of the last update when the feed ran out before a full batch (prompts dropped as stale leave the last
    /// batch short; see <see cref="LearnerWorkerOptions.MaxPrompts"/>); null when every update was full.
    /// </summary>
    public int? ShortLastBatch { get; private set; }
    private double evaluationSeconds;

    /// <summary>The learner step a restart resumed from (null: a fresh start).</summary>
    public long? RestoredStep { get; private set; }

    /// <summary>Runs updates until the configured steps or time are used up.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await RestoreAsync(cancellationToken).ConfigureAwait(false);
        // Generators started on their own wait for a version announcement before answering prompts.
        await AnnounceAsync(cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (options.TimeLimit is { } time) limit.CancelAfter(time);
        var consumer = new Consumer<ScoredGroup>(bus, Topics.Scored, "learner", options.ServiceId,
            new ConsumerOptions { ServiceId = options.ServiceId, Stage = "learner", RunId = runId });
        var subscription = bus.Subscribe(Topics.Scored, "learner", options.ServiceId);
        await using var _ = subscription.ConfigureAwait(false);
        try
        {
            // A learner restarted after the bounded feed was all consumed has nothing left to wait for.
            var feedConsumed = options.MaxPrompts > 0 && consumed.Count >= options.MaxPrompts;
            while (!feedConsumed && (options.Steps == 0 || learner.StepCount < options.Steps))
            {
                BusMessage message;
                try
                {
                    message = await subscription.ReceiveAsync(limit.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    break; // time limit
                }
                var droppedBefore = DroppedStale;
                await consumer.ProcessDeferredAsync(subscription, message, (group, raw, _) => ValueTask.FromResult(Admit(group, raw)),
                    cancellationToken).ConfigureAwait(false);
                // Dropped prompts free admission slots: tell the feeder even without a new version.
                if (DroppedStale != droppedBefore) await AnnounceAsync(cancellationToken).ConfigureAwait(false);
                // A bounded feed whose every prompt is here: train what waits, even a smaller batch, then stop.
                var feedExhausted = options.MaxPrompts > 0 && consumed.Count + buffered.Count >= options.MaxPrompts;
                if (buffer.Count < options.PromptsPerStep && !(feedExhausted && buffer.Count > 0))
                {
                    if (feedExhausted) break;
                    continue;
                }
                if (buffer.Count < options.PromptsPerStep) ShortLastBatch = buffer.Count;
                await StepAsync(subscription, clock, cancellationToken).ConfigureAwait(false);
                if (feedExhausted && buffer.Count == 0) break;
                if (options.TimeLimit is { } t && clock.Elapsed >= t) break;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Graceful stop: keep what was trained (below), hand back what was not.
            foreach (var (_, raw) in buffer) await subscription.NackAsync(raw, CancellationToken.None).ConfigureAwait(false);
            buffer.Clear();
            await CommitAsync(subscription, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        await CommitAsync(subscription, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Decides what to do with a group; true: acknowledge it now.</summary>
    private bool Admit(ScoredGroup group, BusMessage raw)
    {
        var promptId = group.Rollout.Prompt.PromptId;
        if (consumed.Contains(promptId) || buffered.Contains(promptId))
        {
            Duplicates++;
            if (durable.Contains(promptId)) return true;
            pendingAcks.Add(raw); // the first copy is not durable yet: keep this one until it is
            return false;
        }
        if (Version - group.Rollout.PolicyVersion > options.MaxPolicyLag)
        {
            droppedIds.Add(promptId);
            consumed.Add(promptId);
            PipelineMetrics.Shared.StaleDropped();
            ledger?.Write(LedgerEvent.DroppedStale, promptId, learner.StepCount, Version, commits + 1);
            pendingAcks.Add(raw);
            return false;
        }
        buffer.Add((group, raw));
        buffered.Add(promptId);
        return false;
    }

    private async Task StepAsync(IEventSubscription subscription, Stopwatch clock, CancellationToken cancellationToken)
    {
        var used = buffer.Take(options.PromptsPerStep).ToList();
        buffer.RemoveRange(0, used.Count);
        var groupLags = used.Select(u => Version - u.Group.Rollout.PolicyVersion).ToList();
        var tokenLags = used.SelectMany(u => ScoredGroups.TokenLags(u.Group, Version)).GroupBy(l => l).ToDictionary(g => g.Key, g => g.LongCount());
        var stats = learner.Step(used.Select(u => ScoredGroups.ToTrainingData(u.Group)).ToList());
        PipelineMetrics.Shared.LearnerStepped(stats.Metrics, stats.Skipped, groupLags, tokenLags);
        foreach (var (group, raw) in used)
        {
            var promptId = group.Rollout.Prompt.PromptId;
            buffered.Remove(promptId);
            consumed.Add(promptId);
            TrainedPrompts.Add(promptId);
            pendingAcks.Add(raw);
        }
        // The update is done: a graceful stop from here on still publishes it and writes its ledger lines, because the
        // checkpoint that the stop writes counts these prompts as trained (cancelling the publication used to leave
        // them trained in the checkpoint but missing from the ledger).
        // A skipped update (nothing to learn, or a NaN/inf loss) leaves the weights as they were: no new version.
        if (!stats.Skipped)
        {
            var publishClock = Stopwatch.StartNew();
            var manifest = await PublishWeightsAsync(store, policy, options.PublishAdaptersOnly, stats.Step, CancellationToken.None).ConfigureAwait(false);
            Version = manifest.Version;
            PipelineMetrics.Shared.WeightsPublished(Version, publishClock.Elapsed);
        }
        foreach (var (group, _) in used) ledger?.Write(LedgerEvent.Trained, group.Rollout.Prompt.PromptId, stats.Step, Version, commits + 1);
        // Old versions go once no live generator holds them (the newest few always stay).
        if (!stats.Skipped && generators is not null)
            await store.PruneAsync(await generators.HeldVersionsAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        if (stateStore is null || stats.Step % options.CheckpointEvery == 0) await CommitAsync(subscription, cancellationToken).ConfigureAwait(false);
        await AnnounceAsync(cancellationToken).ConfigureAwait(false);
        double? accuracy = null;
        if (options.EvalEvery > 0 && stats.Step % options.EvalEvery == 0 && evaluate is not null)
        {
            var evaluationClock = Stopwatch.StartNew();
            accuracy = evaluate();
            evaluationSeconds += evaluationClock.Elapsed.TotalSeconds;
        }
        report?.Invoke(new StepReport(stats.Step, Version, clock.Elapsed.TotalSeconds, groupLags.Average(), DroppedStale, Duplicates, accuracy, stats.Metrics, stats.Skipped,
            evaluationSeconds, tokenLags));
    }

    /// <summary>Makes everything consumed so far durable (a checkpoint, when there is a store), then acknowledges it.</summary>
    private async Task CommitAsync(IEventSubscription subscription, CancellationToken cancellationToken)
    {
        if (pendingAcks.Count == 0 && lastCheckpointStep == learner.StepCount) return;
        stateStore?.Save(policy, learner, new LearnerProgress(learner.StepCount, Version, learner.Optimizer.StepCount, TrainedPrompts, droppedIds, Duplicates, commits + 1));
        commits++;
        lastCheckpointStep = learner.StepCount;
        ledger?.Write(LedgerEvent.Committed, step: learner.StepCount, version: Version, commit: commits);
        durable.UnionWith(consumed);
        foreach (var raw in pendingAcks) await subscription.AckAsync(raw, cancellationToken).ConfigureAwait(false);
        pendingAcks.Clear();
    }

    /// <summary>Resumes from the newest checkpoint, if any: weights, optimizer, random stream, consumed ids; then publishes a new version.</summary>
    private async Task RestoreAsync(CancellationToken cancellationToken)
    {
        if (stateStore is null) return;
        if (stateStore.Restore(policy, learner) is not { } progress)
        {
            // A checkpoint of the starting point, so that a learner killed before its first update resumes from
            // the same initial policy (not from a new initialisation).
            stateStore.Save(policy, learner, new LearnerProgress(0, Version, 0, [], [], 0, 0));
            return;
        }
        RestoredStep = progress.Step;
        lastCheckpointStep = progress.Step;
        commits = progress.Commit;
        TrainedPrompts.AddRange(progress.Trained);
        droppedIds.AddRange(progress.DroppedStale);
        consumed.UnionWith(progress.Trained);
        consumed.UnionWith(progress.DroppedStale);
        durable.UnionWith(consumed);
        Duplicates = progress.Duplicates;
        ledger?.Write(LedgerEvent.Restored, step: progress.Step, version: progress.PublishedVersion, commit: progress.Commit);
        // When the store's newest version is the checkpoint's, generators already sample with exactly these weights:
        // keep it, so samples in flight are not made stale by a restart. Otherwise the dead learner published weights
        // past its last checkpoint; they are gone from the run's lineage, so publish the restored ones as a newer
        // version (the store numbers versions above its newest: never an old number).
        if (await store.CurrentVersionAsync(cancellationToken).ConfigureAwait(false) == progress.PublishedVersion)
        {
            Version = progress.PublishedVersion;
            return;
        }
        var manifest = await PublishWeightsAsync(store, policy, options.PublishAdaptersOnly, progress.Step, cancellationToken).ConfigureAwait(false);
        Version = Math.Max(manifest.Version, progress.PublishedVersion);
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

    private async Task AnnounceAsync(CancellationToken cancellationToken)
    {
        var announcement = new PolicyVersion
        {
            Version = Version, Step = learner.StepCount, ManifestLocation = $"weights:v{Version}", RetiredPrompts = consumed.Count,
        };
        await publisher.PublishAsync(Topics.Policy, announcement.Stamp(runId), $"policy-{Version}", cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>Converts contract messages to the learner's input.</summary>
public static class ScoredGroups
{
    /// <summary>The learner's view of a scored group.</summary>
    public static OnlineRl.Training.ScoredGroupData ToTrainingData(ScoredGroup group) => new(
        group.Rollout.MessageId,
        group.Rollout.Prompt.TokenIds.ToArray(),
        group.Rollout.Completions.Select((c, i) => new OnlineRl.Training.ScoredCompletion(c.TokenIds.ToArray(), c.Logprobs.ToArray(), group.Rewards[i])).ToList(),
        group.Rollout.PolicyVersion);

    /// <summary>
    /// The version lag, for a learner at <paramref name="learnerVersion"/>, of every completion token of
    /// <paramref name="group"/> (a completion without per-token versions was sampled wholly by the group's version).
    /// </summary>
    public static IEnumerable<long> TokenLags(ScoredGroup group, long learnerVersion) =>
        group.Rollout.Completions.SelectMany(c => c.TokenPolicyVersions.Count > 0
            ? c.TokenPolicyVersions.Select(v => learnerVersion - v)
            : Enumerable.Repeat(learnerVersion - group.Rollout.PolicyVersion, c.TokenIds.Count));
}
