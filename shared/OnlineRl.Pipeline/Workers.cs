using System.Diagnostics;
using System.Threading.Channels;
using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Model;
using OnlineRl.Rewards;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>A feeder's position: what it published and what the learner's announcements told it.</summary>
/// <param name="Published">Prompts published (the next prompt's training index).</param>
/// <param name="Retired">Prompts the learner has retired (trained on or dropped), from its newest announcement.</param>
/// <param name="NewestVersion">The newest weights version announced.</param>
public sealed record FeederPosition(long Published, long Retired, long NewestVersion);

/// <summary>
/// Keeps a feeder's <see cref="FeederPosition"/> in a blob store shared with the rest of the run (the weight
/// store's Redis for service processes), so that a feeder restarted after a crash continues numbering prompts
/// where its predecessor stopped instead of at 0, and admits as many as its predecessor could.
/// </summary>
/// <param name="blobs">The store.</param>
/// <param name="key">The position's key, one per run (see <see cref="PipelineServices.FeederPositionKey"/>).</param>
public sealed class FeederCursor(IBlobStore blobs, string key)
{
    /// <summary>The saved position, or null when no feeder of the run saved one.</summary>
    /// <exception cref="InvalidDataException">The saved bytes are not a position (the key names it).</exception>
    public async Task<FeederPosition?> LoadAsync(CancellationToken cancellationToken)
    {
        var bytes = await blobs.GetAsync(key, cancellationToken).ConfigureAwait(false);
        if (bytes is null) return null;
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<FeederPosition>(bytes) ?? throw new System.Text.Json.JsonException("null");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"feeder position '{key}' is unreadable ({e.Message})", e);
        }
    }

    /// <summary>Saves <paramref name="position"/> (replacing the previous one).</summary>
    public Task SaveAsync(FeederPosition position, CancellationToken cancellationToken) =>
        blobs.SetAsync(key, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(position), cancellationToken);
}

/// <summary>
/// Publishes prompts with admission control: at most <c>inFlightLimit</c> prompts that the learner has
/// not yet retired (trained on or dropped), so generators never run further ahead than the allowed
/// policy lag. The learner's policy announcements carry the retired count. With a limit of
/// (1 + max lag) × prompts per step, a prompt admitted once version v is announced is trained on by the
/// time the learner holds v + max lag, so it must be sampled with v or newer: its minimum policy version
/// is v. (v − max lag would let a generator that has not yet swapped in v answer it with weights that are
/// stale by the time the learner sees them: up to twice the allowed lag, and dropped.)
/// With <c>maxPrompts</c> &gt; 0 it stops publishing after that many prompts (and keeps following announcements until cancelled).
/// With a <see cref="FeederCursor"/> it starts from the saved position and saves it after every prompt and every
/// announcement. A kill between publishing a prompt and saving makes the restarted feeder publish that prompt again
/// (same id and content): delivery is at least once anyway, and the learner trains each prompt id once.
/// </summary>
public sealed class FeederWorker(IEventBus bus, TaskSource tasks, ITokenizer tokenizer, string runId, long inFlightLimit,
    long maxPrompts = 0, LedgerWriter? ledger = null, FeederCursor? cursor = null)
{
    private readonly Publisher publisher = new(bus);
    private long published;

    /// <summary>Prompts published so far (the next training index), counting those of a predecessor the cursor restored.</summary>
    public long Published => Interlocked.Read(ref published);

    /// <summary>Runs until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var announcements = bus.Subscribe(Topics.Policy, $"feeder-{runId}", "feeder");
        await using var _ = announcements.ConfigureAwait(false);
        long retired = 0, newestVersion = 0;
        if (cursor is not null && await cursor.LoadAsync(cancellationToken).ConfigureAwait(false) is { } position)
            (published, retired, newestVersion) = (position.Published, position.Retired, position.NewestVersion);
        while (true)
        {
            while (Published < retired + inFlightLimit && (maxPrompts == 0 || Published < maxPrompts))
            {
                var item = tasks.Training(Published);
                var prompt = new PromptMessage
                {
                    PromptId = $"{item.Id}#{Published}", Text = item.Prompt, Dataset = item.Id.Split('-')[0], DatasetIndex = Published,
                    MinPolicyVersion = newestVersion,
                };
                prompt.TokenIds.AddRange(tokenizer.Encode(item.Prompt));
                prompt.Metadata["answer"] = item.Answer;
                await publisher.PublishAsync(Topics.Prompts, prompt.Stamp(runId), prompt.PromptId, cancellationToken: cancellationToken).ConfigureAwait(false);
                ledger?.Write(LedgerEvent.Published, prompt.PromptId);
                Interlocked.Increment(ref published);
                await SaveAsync(retired, newestVersion, cancellationToken).ConfigureAwait(false);
            }
            PipelineMetrics.Shared.PromptsInFlight(Published - retired);
            var message = await announcements.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            var decoded = MessageCodec.Default.Decode<PolicyVersion>(message.Payload.Span);
            if (decoded.Ok)
            {
                retired = Math.Max(retired, decoded.Value!.RetiredPrompts);
                newestVersion = Math.Max(newestVersion, decoded.Value.Version);
                await SaveAsync(retired, newestVersion, cancellationToken).ConfigureAwait(false);
            }
            await announcements.AckAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task SaveAsync(long retired, long newestVersion, CancellationToken cancellationToken) =>
        cursor?.SaveAsync(new FeederPosition(Published, retired, newestVersion), cancellationToken) ?? Task.CompletedTask;
}

/// <summary>
/// Samples G completions per prompt with its own copy of the policy and swaps in newer weights between groups:
/// continuously batched (<c>sampling.batching continuous</c>: up to <c>batchPrompts</c> × G rows decoding, a prompt's
/// completions joining as others end; GeneratorWorker.Continuous.cs), or in static batches of up to <c>batchPrompts</c>
/// prompts, padded to the longest completion.
/// </summary>
public sealed partial class GeneratorWorker
{
    private readonly IEventBus bus;
    private readonly WeightStore store;
    private readonly TransformerModel model;
    private readonly ITokenizer tokenizer;
    private readonly SamplingSection sampling;
    private readonly string runId;
    private readonly int batchPrompts;
    private readonly long seed;
    private readonly Publisher publisher;
    private readonly LedgerWriter? ledger;
    private readonly IGeneratorStatusReporter? status;
    private long announced;
    private long batches;
    private long lastReportMs = Environment.TickCount64;

    /// <summary>
    /// Creates the worker around <paramref name="model"/>, which holds weights version <paramref name="heldVersion"/>
    /// (0: none yet; the first announced version is loaded before any prompt is answered). The version held is
    /// reported to <paramref name="status"/> at the start, after every swap and, when the status's reports expire, as a
    /// heartbeat (<see cref="IGeneratorStatusReporter.Heartbeat"/>), idle or not.
    /// </summary>
    public GeneratorWorker(IEventBus bus, WeightStore store, TransformerModel model, ITokenizer tokenizer, SamplingSection sampling,
        string runId, string generatorId, long heldVersion, int batchPrompts = 16, long seed = 0, LedgerWriter? ledger = null,
        IGeneratorStatusReporter? status = null)
    {
        this.ledger = ledger;
        this.status = status;
        this.bus = bus;
        this.store = store;
        this.model = model;
        this.tokenizer = tokenizer;
        this.sampling = sampling;
        this.runId = runId;
        GeneratorId = generatorId;
        this.batchPrompts = batchPrompts;
        this.seed = seed;
        HeldVersion = heldVersion;
        announced = heldVersion;
        publisher = new Publisher(bus);
        PipelineMetrics.Shared.HeldWeights(generatorId, heldVersion);
    }

    /// <summary>This generator's id.</summary>
    public string GeneratorId { get; }

    /// <summary>The weights version this generator samples with.</summary>
    public long HeldVersion { get; private set; }

    /// <summary>Weight versions refused because they failed verification.</summary>
    public long RejectedVersions { get; private set; }

    /// <summary>Runs until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var prompts = Channel.CreateBounded<(PromptMessage Prompt, BusMessage Raw, IEventSubscription From)>(batchPrompts);
        await ReportHeldAsync(cancellationToken).ConfigureAwait(false);
        // Either background loop failing (e.g. the bus refused our credentials) ends the run with its error: the
        // prompt channel is completed with it, so the main loop's wait throws instead of waiting for ever.
        var watcher = FailInto(prompts.Writer, WatchPolicyAsync(linked.Token));
        var pump = FailInto(prompts.Writer, PumpPromptsAsync(prompts.Writer, linked.Token));
        try
        {
            if (sampling.Batching == SamplingSection.ContinuousBatching)
            {
                await RunContinuousAsync(prompts.Reader, watcher, linked.Token).ConfigureAwait(false);
                return;
            }
            while (true)
            {
                var first = await NextPromptAsync(prompts.Reader, linked.Token).ConfigureAwait(false);
                var batch = new List<(PromptMessage Prompt, BusMessage Raw, IEventSubscription From)> { first };
                while (batch.Count < batchPrompts && prompts.Reader.TryRead(out var more)) batch.Add(more);
                await WaitForWeightsAsync(batch.Max(b => b.Prompt.MinPolicyVersion), watcher, linked.Token).ConfigureAwait(false);
                await SwapWeightsIfNewerAsync(linked.Token).ConfigureAwait(false);
                await GenerateAsync(batch, linked.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            await linked.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(watcher.ContinueWith(_ => { }, TaskScheduler.Default), pump.ContinueWith(_ => { }, TaskScheduler.Default)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A prompt admitted after version v was announced must not be answered by older weights: waits for that announcement
    /// to reach this generator and for its weights. A generator that holds no weights yet (a service started before the
    /// learner) waits for the first version.
    /// </summary>
    private async Task WaitForWeightsAsync(long minPolicyVersion, Task watcher, CancellationToken cancellationToken)
    {
        var required = Math.Max(minPolicyVersion, 1);
        while (Interlocked.Read(ref announced) < required || HeldVersion < required)
        {
            if (watcher.IsFaulted) await watcher.ConfigureAwait(false); // no announcement will come
            await SwapWeightsIfNewerAsync(cancellationToken).ConfigureAwait(false);
            if (HeldVersion < required) await Task.Delay(2, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task FailInto(ChannelWriter<(PromptMessage, BusMessage, IEventSubscription)> writer, Task loop)
    {
        try
        {
            await loop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            writer.TryComplete(e);
            throw;
        }
    }

    /// <summary>
    /// The next prompt. While none comes the generator keeps taking newly announced weights, so an idle generator
    /// (e.g. at the end of a run) does not sit on an old version.
    /// </summary>
    private async Task<(PromptMessage Prompt, BusMessage Raw, IEventSubscription From)> NextPromptAsync(
        ChannelReader<(PromptMessage Prompt, BusMessage Raw, IEventSubscription From)> reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (reader.TryRead(out var item)) return item;
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            idle.CancelAfter(IdleWeightCheck);
            try
            {
                await reader.WaitToReadAsync(idle.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await SwapWeightsIfNewerAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static readonly TimeSpan IdleWeightCheck = TimeSpan.FromMilliseconds(250);

    private async Task WatchPolicyAsync(CancellationToken cancellationToken)
    {
        var subscription = bus.Subscribe(Topics.Policy, $"generator-{GeneratorId}", GeneratorId);
        await using var _ = subscription.ConfigureAwait(false);
        while (true)
        {
            var message = await subscription.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            var decoded = MessageCodec.Default.Decode<PolicyVersion>(message.Payload.Span);
            if (decoded.Ok) InterlockedMax(ref announced, decoded.Value!.Version);
            await subscription.AckAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }

    private async Task PumpPromptsAsync(ChannelWriter<(PromptMessage, BusMessage, IEventSubscription)> writer, CancellationToken cancellationToken)
    {
        var consumer = new Consumer<PromptMessage>(bus, Topics.Prompts, "generators", GeneratorId,
            new ConsumerOptions { ServiceId = GeneratorId, Stage = "generator", RunId = runId });
        var subscription = bus.Subscribe(Topics.Prompts, "generators", GeneratorId);
        await using var _ = subscription.ConfigureAwait(false);
        while (true)
        {
            var message = await subscription.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            await consumer.ProcessDeferredAsync(subscription, message, async (prompt, raw, ct) =>
            {
                // Checked here so that a bad prompt is dead-lettered with its reason instead of failing a whole batch.
                if (prompt.TokenIds.Count == 0 || prompt.TokenIds.Any(t => t >= model.Config.VocabSize))
                    throw new InvalidDataException($"prompt {prompt.PromptId}: token ids are empty or outside the model's vocabulary");
                if (prompt.TokenIds.Count + sampling.MaxNewTokens > model.Config.MaxPositionEmbeddings)
                    throw new InvalidDataException($"prompt {prompt.PromptId}: {prompt.TokenIds.Count} tokens + {sampling.MaxNewTokens} new exceed the model's {model.Config.MaxPositionEmbeddings} positions");
                await writer.WriteAsync((prompt, raw, subscription), ct).ConfigureAwait(false);
                return false;
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ReportHeldAsync(CancellationToken cancellationToken)
    {
        if (status is null) return;
        await status.ReportAsync(GeneratorId, HeldVersion, cancellationToken).ConfigureAwait(false);
        lastReportMs = Environment.TickCount64;
    }

    /// <summary>Renews the report once it is a heartbeat old (called before every batch and every check while idle).</summary>
    private async Task RenewReportAsync(CancellationToken cancellationToken)
    {
        if (status?.Heartbeat is not { } heartbeat || Environment.TickCount64 - lastReportMs < heartbeat.TotalMilliseconds) return;
        try
        {
            await ReportHeldAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The registry is unreachable (e.g. Redis restarting): a missed renewal only unlists this generator for a
            // while, so generating goes on and the renewal is tried again a heartbeat later.
            lastReportMs = Environment.TickCount64;
        }
    }

    private async Task SwapWeightsIfNewerAsync(CancellationToken cancellationToken)
    {
        var newest = Interlocked.Read(ref announced);
        if (newest <= HeldVersion)
        {
            await RenewReportAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        var loadClock = Stopwatch.StartNew();
        Dictionary<string, Tensor> weights;
        try
        {
            weights = await store.LoadAsync(newest, model.Device, model.DType, cancellationToken).ConfigureAwait(false);
        }
        catch (WeightIntegrityException)
        {
            // Keep sampling with the weights we have; a later version may verify.
            RejectedVersions++;
            PipelineMetrics.Shared.WeightsRejected(GeneratorId);
            return;
        }
        try
        {
            var own = model.state_dict();
            var unknown = weights.Keys.Where(k => !own.ContainsKey(k)).ToList();
            if (unknown.Count > 0) throw new InvalidDataException($"weights version {newest} has tensors this model lacks: {string.Join(", ", unknown.Take(3))}");
            model.load_state_dict(weights, strict: false);
            HeldVersion = newest;
            await ReportHeldAsync(cancellationToken).ConfigureAwait(false);
            PipelineMetrics.Shared.WeightsLoaded(loadClock.Elapsed);
            PipelineMetrics.Shared.HeldWeights(GeneratorId, newest);
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    private async Task GenerateAsync(List<(PromptMessage Prompt, BusMessage Raw, IEventSubscription From)> batch, CancellationToken cancellationToken)
    {
        var batchSeed = seed * 1_000_003 + Interlocked.Increment(ref batches);
        var options = SamplingOptions(batchSeed);
        var clock = Stopwatch.StartNew();
        var completions = Sampler.Generate(model, batch.Select(b => b.Prompt.TokenIds.ToArray()).ToList(), options);
        var generateMs = clock.Elapsed.TotalMilliseconds;
        PipelineMetrics.Shared.Generated(GeneratorId, completions);
        for (var i = 0; i < batch.Count; i++)
            await PublishGroupAsync(batch[i], completions.Where(c => c.PromptIndex == i), generateMs / batch.Count, generateMs, batchSeed, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How this generator samples (sampling.*; a completion ends at the tokenizer's end token).</summary>
    private SamplingOptions SamplingOptions(long seed) => new()
    {
        CompletionsPerPrompt = sampling.GroupSize, MaxNewTokens = sampling.MaxNewTokens, Temperature = sampling.Temperature,
        TopK = sampling.TopK, TopP = sampling.TopP, Seed = seed,
        StopTokenIds = tokenizer.EosId is { } eos ? new[] { eos } : Array.Empty<int>(),
    };

    /// <summary>
    /// Publishes one prompt's completions, sampled with <see cref="HeldVersion"/> in <paramref name="generateMs"/> of this
    /// generator's time (<paramref name="wallMs"/> since the prompt was taken up), and acknowledges the prompt.
    /// </summary>
    private async Task PublishGroupAsync((PromptMessage Prompt, BusMessage Raw, IEventSubscription From) item, IEnumerable<Model.Completion> completions,
        double generateMs, double wallMs, long groupSeed, CancellationToken cancellationToken)
    {
        var prompt = item.Prompt;
        var group = new RolloutGroup
        {
            Prompt = prompt, PolicyVersion = HeldVersion, GeneratorId = GeneratorId,
            Sampling = new SamplingParams
            {
                Temperature = (float)sampling.Temperature, TopK = sampling.TopK, TopP = (float)sampling.TopP,
                MaxNewTokens = sampling.MaxNewTokens, Seed = (ulong)groupSeed,
            },
            Timings = new RolloutTimings
            {
                GenerateMs = generateMs,
                QueueMs = Math.Max(0, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - prompt.CreatedAtUnixMs - wallMs),
            },
        };
        foreach (var c in completions)
        {
            var completion = new OnlineRl.Contracts.Completion
            {
                Text = tokenizer.Decode(c.TokenIds, skipSpecialTokens: true),
                FinishReason = c.Finish == Model.FinishReason.Stop ? Contracts.FinishReason.Stop : Contracts.FinishReason.Length,
            };
            completion.TokenIds.AddRange(c.TokenIds);
            completion.Logprobs.AddRange(c.LogProbs);
            group.Completions.Add(completion);
        }
        await publisher.PublishAsync(Topics.Rollouts, group.Stamp(runId), prompt.PromptId, cancellationToken: cancellationToken).ConfigureAwait(false);
        ledger?.Write(LedgerEvent.Generated, prompt.PromptId, version: HeldVersion);
        await item.From.AckAsync(item.Raw, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>Computes the rewards of one rollout group: a total per completion plus named components.</summary>
public interface IGroupScorer
{
    /// <summary>Version string written into every scored group (changes when the scoring changes).</summary>
    string Version { get; }

    /// <summary>Totals (one per completion) and components (name to one value per completion).</summary>
    (float[] Totals, Dictionary<string, float[]> Components) Score(RolloutGroup group);
}

/// <summary>Rule (verifiable) rewards, a weighted sum of components.</summary>
public sealed class RuleScorer(WeightedReward reward) : IGroupScorer
{
    /// <inheritdoc />
    public string Version => "rules-1";

    /// <inheritdoc />
    public (float[] Totals, Dictionary<string, float[]> Components) Score(RolloutGroup group)
    {
        var n = group.Completions.Count;
        var totals = new float[n];
        var components = reward.ComponentNames.ToDictionary(name => name, _ => new float[n]);
        for (var i = 0; i < n; i++)
        {
            var completion = group.Completions[i];
            var (total, parts) = reward.Score(new RewardInput(group.Prompt.Text, completion.Text, group.Prompt.Metadata, completion.TokenIds.Count));
            totals[i] = (float)total;
            foreach (var (name, value) in parts) components[name][i] = (float)value;
        }
        return (totals, components);
    }
}

/// <summary>
/// A learned reward: the reward model's score of each prompt + completion (component "reward_model"),
/// optionally added to rule rewards with a weight.
/// </summary>
public sealed class RewardModelScorer(TransformerModel rewardModel, string modelName, RuleScorer? rules = null, double modelWeight = 1.0) : IGroupScorer
{
    private readonly object gate = new();

    /// <inheritdoc />
    public string Version => $"reward-model:{modelName}" + (rules is null ? "" : "+" + rules.Version);

    /// <inheritdoc />
    public (float[] Totals, Dictionary<string, float[]> Components) Score(RolloutGroup group)
    {
        var sequences = group.Completions.Select(c => (group.Prompt.TokenIds.ToArray(), c.TokenIds.ToArray())).ToList();
        float[] learned;
        lock (gate) learned = OnlineRl.Training.RewardModel.Score(rewardModel, sequences);
        var (totals, components) = rules?.Score(group) ?? (new float[learned.Length], new Dictionary<string, float[]>());
        for (var i = 0; i < learned.Length; i++) totals[i] += (float)(modelWeight * learned[i]);
        components["reward_model"] = learned;
        return (totals, components);
    }
}

/// <summary>Attaches rewards to rollout groups.</summary>
public sealed class ScorerWorker(IEventBus bus, IGroupScorer scorer, string runId, string scorerId, LedgerWriter? ledger = null)
{
    private readonly Publisher publisher = new(bus);

    /// <summary>Runs until cancelled.</summary>
    public Task RunAsync(CancellationToken cancellationToken)
    {
        var consumer = new Consumer<RolloutGroup>(bus, Topics.Rollouts, "scorers", scorerId,
            new ConsumerOptions { ServiceId = scorerId, Stage = "scorer", RunId = runId });
        return consumer.RunAsync(async (group, _, ct) =>
        {
            var (totals, components) = scorer.Score(group);
            PipelineMetrics.Shared.Scored(totals, components);
            var scored = new ScoredGroup { Rollout = group, ScorerId = scorerId, ScorerVersion = scorer.Version };
            scored.Rewards.AddRange(totals);
            foreach (var (name, values) in components)
            {
                var list = new FloatList();
                list.Values.AddRange(values);
                scored.RewardComponents[name] = list;
            }
            await publisher.PublishAsync(Topics.Scored, scored.Stamp(runId), group.Prompt.PromptId, cancellationToken: ct).ConfigureAwait(false);
            ledger?.Write(LedgerEvent.Scored, group.Prompt.PromptId);
        }, cancellationToken);
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
}
