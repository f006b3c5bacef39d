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

/// <summary>
/// Samples G completions per prompt with its own copy of the policy and swaps in newer weights: continuously batched
/// (<c>sampling.batching continuous</c>: up to <c>batchPrompts</c> × G rows decoding, a prompt's completions joining as
/// others end, weights swapped between two decode steps or between groups; GeneratorWorker.Continuous.cs), or in static
/// batches of up to <c>batchPrompts</c> prompts, padded to the longest completion, weights swapped between batches.
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
    private long refusedVersion = -1;
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

    /// <summary>Follows the learner's announcements (an undecodable one goes to the dead-letter topic).</summary>
    private Task WatchPolicyAsync(CancellationToken cancellationToken) =>
        new Consumer<PolicyVersion>(bus, Topics.Policy, $"generator-{GeneratorId}", GeneratorId,
                new ConsumerOptions { ServiceId = GeneratorId, Stage = "generator", RunId = runId })
            .RunAsync((announcement, _, _) =>
            {
                InterlockedMax(ref announced, announcement.Version);
                return ValueTask.CompletedTask;
            }, cancellationToken);

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

    /// <summary>
    /// Loads the newest announced version when it is newer than the one held. A version that fails verification is
    /// refused (counted, and not fetched again): sampling goes on with the weights held until a newer version verifies.
    /// </summary>
    private async Task SwapWeightsIfNewerAsync(CancellationToken cancellationToken)
    {
        var newest = Interlocked.Read(ref announced);
        if (newest <= HeldVersion || newest == refusedVersion)
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
            refusedVersion = newest;
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
    /// Publishes one prompt's completions, sampled with <see cref="HeldVersion"/> (or, swapped in flight, the versions their tokens record) in <paramref name="generateMs"/> of this
    /// generator's time (<paramref name="wallMs"/> since the prompt was taken up), and acknowledges the prompt.
    /// </summary>
    private async Task PublishGroupAsync((PromptMessage Prompt, BusMessage Raw, IEventSubscription From) item, IEnumerable<SampledCompletion> completions,
        double generateMs, double wallMs, long groupSeed, CancellationToken cancellationToken)
    {
        var prompt = item.Prompt;
        var sampled = completions.ToList();
        // With in-flight swaps a group's tokens may span versions; the group is as old as its oldest token.
        var version = sampled.Any(c => c.TokenVersions is not null) ? sampled.SelectMany(c => c.TokenVersions ?? Array.Empty<long>()).Min() : HeldVersion;
        var group = new RolloutGroup
        {
            Prompt = prompt, PolicyVersion = version, GeneratorId = GeneratorId,
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
        foreach (var c in sampled)
        {
            var completion = new Completion
            {
                Text = tokenizer.Decode(c.TokenIds, skipSpecialTokens: true),
                FinishReason = c.Finish,
            };
            completion.TokenIds.AddRange(c.TokenIds);
            completion.Logprobs.AddRange(c.LogProbs);
            // Written only when the completion spans versions; empty means "all under policy_version".
            if (c.TokenVersions is { } versions && versions.Any(v => v != version)) completion.TokenPolicyVersions.AddRange(versions);
            group.Completions.Add(completion);
        }
        await publisher.PublishAsync(Topics.Rollouts, group.Stamp(runId), prompt.PromptId, cancellationToken: cancellationToken).ConfigureAwait(false);
        ledger?.Write(LedgerEvent.Generated, prompt.PromptId, version: version);
        await item.From.AckAsync(item.Raw, cancellationToken).ConfigureAwait(false);
    }
}
