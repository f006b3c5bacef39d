using System.Diagnostics;
using System.Threading.Channels;
using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Model;

namespace OnlineRl.Pipeline;

// The generator's continuous-batching loop (sampling.batching continuous).
public sealed partial class GeneratorWorker
{
    /// <summary>
    /// Keeps up to <c>batchPrompts</c> × G completions decoding in one <see cref="ContinuousBatcher"/>: prompts join as
    /// rows free up and each prompt's group is published when its last completion ends. Weights are swapped
    /// (sampling.weight_swap) in flight: a newer verified version replaces the weights between two decode steps and the
    /// running completions go on under it, each token tagged with the version that sampled it; or between groups: once
    /// a newer version is announced no new prompt joins, the running groups end under the weights they started with,
    /// and the swap happens with the engine empty, so every group is sampled by one version.
    /// </summary>
    private async Task RunContinuousAsync(ChannelReader<(PromptMessage Prompt, BusMessage Raw, IEventSubscription From)> prompts, Task watcher,
        CancellationToken cancellationToken)
    {
        var inFlight = sampling.WeightSwap == SamplingSection.InFlightSwap;
        var rows = batchPrompts * sampling.GroupSize;
        using var engine = new ContinuousBatcher(model, SamplingOptions(seed), rows, promptTokens: 64, weightsVersion: HeldVersion);
        var open = new Dictionary<long, ((PromptMessage Prompt, BusMessage Raw, IEventSubscription From) Item, long Seed, Stopwatch Clock)>();
        (PromptMessage Prompt, BusMessage Raw, IEventSubscription From)? next = null;

        void Admit((PromptMessage Prompt, BusMessage Raw, IEventSubscription From) item)
        {
            var groupSeed = seed * 1_000_003 + Interlocked.Increment(ref batches);
            var id = engine.Add(item.Prompt.TokenIds.ToArray(), groupSeed);
            open.Add(id, (item, groupSeed, Stopwatch.StartNew()));
        }

        while (true)
        {
            if (engine.OpenGroups == 0)
            {
                next ??= await NextPromptAsync(prompts, cancellationToken).ConfigureAwait(false);
                await WaitForWeightsAsync(next.Value.Prompt.MinPolicyVersion, watcher, cancellationToken).ConfigureAwait(false);
            }
            if (engine.OpenGroups == 0 || inFlight)
            {
                await SwapWeightsIfNewerAsync(cancellationToken).ConfigureAwait(false);
                // The engine learns of new weights (here, or loaded while waiting for them) before its next step.
                if (engine.WeightsVersion != HeldVersion) engine.WeightsChanged(HeldVersion, recompute: sampling.SwapCache == SamplingSection.RecomputeCache);
            }
            else
            {
                await RenewReportAsync(cancellationToken).ConfigureAwait(false);
            }
            if (next is { } held && held.Prompt.MinPolicyVersion <= HeldVersion)
            {
                Admit(held);
                next = null;
            }
            // One group waiting beyond the running rows is enough to fill every row that frees up in the next step.
            while (next is null && engine.WaitingCompletions < sampling.GroupSize && (inFlight || Interlocked.Read(ref announced) <= HeldVersion)
                   && prompts.TryRead(out var more))
            {
                if (more.Prompt.MinPolicyVersion > HeldVersion) next = more;
                else Admit(more);
            }
            // A step is synchronous compute and every await around it usually completes at once, so without this the loop
            // would hold its thread-pool thread for as long as the engine is busy, and on a small machine the prompt pump
            // and the announcement watcher (queued behind it) would stall until the engine drained.
            await Task.Yield();
            foreach (var group in engine.Step())
            {
                var (item, groupSeed, clock) = open[group.Id];
                open.Remove(group.Id);
                PipelineMetrics.Shared.Generated(GeneratorId, group.Completions);
                // Rows are shared with other groups step by step, so a group's time is its latency: from joining to its last token.
                var ms = clock.Elapsed.TotalMilliseconds;
                await PublishGroupAsync(item, group.Completions, ms, ms, groupSeed, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
