using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Rewards;
using OnlineRl.Tokenizers;
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
        var policy = new Consumer<PolicyVersion>(bus, Topics.Policy, $"feeder-{runId}", "feeder",
            new ConsumerOptions { ServiceId = "feeder", Stage = "feeder", RunId = runId });
        var announcements = bus.Subscribe(policy.Topic, policy.GroupId, policy.ConsumerId);
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
            // Admission pauses here until the learner announces progress (an undecodable announcement is dead-lettered).
            var message = await announcements.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            await policy.ProcessAsync(announcements, message, async (announcement, _, ct) =>
            {
                retired = Math.Max(retired, announcement.RetiredPrompts);
                newestVersion = Math.Max(newestVersion, announcement.Version);
                await SaveAsync(retired, newestVersion, ct).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task SaveAsync(long retired, long newestVersion, CancellationToken cancellationToken) =>
        cursor?.SaveAsync(new FeederPosition(Published, retired, newestVersion), cancellationToken) ?? Task.CompletedTask;
}
