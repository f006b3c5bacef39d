using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnlineRl.Pipeline;

/// <summary>What a stage did with a prompt (or, for the learner's bookkeeping entries, with a step).</summary>
public enum LedgerEvent
{
    /// <summary>The feeder published the prompt.</summary>
    Published,
    /// <summary>A generator published a group of completions for it (<see cref="LedgerEntry.Version"/>: the weights used).</summary>
    Generated,
    /// <summary>A scorer published its rewards.</summary>
    Scored,
    /// <summary>The learner trained on it in step <see cref="LedgerEntry.Step"/> (final once commit <see cref="LedgerEntry.Commit"/> is).</summary>
    Trained,
    /// <summary>The learner dropped it because its policy was too old (final once commit <see cref="LedgerEntry.Commit"/> is).</summary>
    DroppedStale,
    /// <summary>The learner's commit number <see cref="LedgerEntry.Commit"/> is durable (checkpointed) and acknowledged.</summary>
    Committed,
    /// <summary>A learner restarted from its checkpoint of commit <see cref="LedgerEntry.Commit"/>: later entries of the dead learner were lost.</summary>
    Restored,
    /// <summary>
    /// A Kafka message (<see cref="LedgerEntry.Topic"/>, <see cref="LedgerEntry.Message"/>) was handed to a reader of
    /// consumer group <see cref="LedgerEntry.Group"/> (see <see cref="LedgerDeliveryJournal"/>); its key is the prompt id.
    /// </summary>
    Delivered,
}

/// <summary>One line of a ledger file.</summary>
/// <param name="UnixMs">When it was written (orders the learner's entries across restarted processes).</param>
/// <param name="Service">The service instance that wrote it.</param>
/// <param name="Event">What happened.</param>
/// <param name="PromptId">The prompt (empty for <see cref="LedgerEvent.Committed"/> and <see cref="LedgerEvent.Restored"/>).</param>
/// <param name="Step">Learner step (learner entries).</param>
/// <param name="Version">Weights version (generated: the generator's; learner entries: the newest published).</param>
/// <param name="Commit">Learner entries: the commit (checkpoint) number that includes them.</param>
/// <param name="Group">Delivered: the consumer group.</param>
/// <param name="Topic">Delivered: the topic.</param>
/// <param name="Message">Delivered: the message's position in the topic, "partition:offset".</param>
public sealed record LedgerEntry(long UnixMs, string Service, LedgerEvent Event, string PromptId = "", long Step = 0, long Version = 0, long Commit = 0,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] string? Group = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] string? Topic = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] string? Message = null);

/// <summary>
/// Appends one service instance's ledger entries as JSON lines to its own file in a ledger directory, so
/// that separate processes never share a file. Each line is written and flushed whole; a line torn by a
/// kill is skipped (and counted) by <see cref="Ledger.Verify"/>. Thread-safe.
/// </summary>
public sealed class LedgerWriter : IDisposable
{
    private readonly StreamWriter writer;
    private readonly Lock gate = new();

    /// <summary>Opens (appending) <c>DIR/SERVICE[SUFFIX].jsonl</c>.</summary>
    /// <param name="directory">The ledger directory.</param>
    /// <param name="serviceId">The writing service instance.</param>
    /// <param name="fileSuffix">Added to the file name: a second file of the same service (its deliveries), so that
    /// two writers never append to one file.</param>
    public LedgerWriter(string directory, string serviceId, string fileSuffix = "")
    {
        Directory.CreateDirectory(directory);
        ServiceId = serviceId;
        var safeName = string.Concat((serviceId + fileSuffix).Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        Path = System.IO.Path.Combine(directory, safeName + ".jsonl");
        writer = new StreamWriter(new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
    }

    /// <summary>The writing service instance.</summary>
    public string ServiceId { get; }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Appends one entry (and flushes it to the operating system, so a killed process keeps it).</summary>
    public void Write(LedgerEvent what, string promptId = "", long step = 0, long version = 0, long commit = 0) =>
        Write(new LedgerEntry(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ServiceId, what, promptId, step, version, commit));

    /// <summary>Appends one entry as it is (and flushes it to the operating system).</summary>
    public void Write(LedgerEntry entry)
    {
        var line = JsonSerializer.Serialize(entry, Ledger.Json);
        lock (gate)
        {
            writer.WriteLine(line);
            writer.Flush();
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        lock (gate) writer.Dispose();
    }
}

/// <summary>What <see cref="Ledger.Verify"/> found.</summary>
/// <param name="Published">Prompts the feeder published.</param>
/// <param name="Trained">Prompts trained (committed), each counted once.</param>
/// <param name="DroppedStale">Prompts dropped for staleness (committed).</param>
/// <param name="TrainedTwice">Prompts trained or dropped more than once: a bug.</param>
/// <param name="Missing">Published prompts never trained nor dropped (lost, or still in flight when the run stopped).</param>
/// <param name="NeverGeneratedOrScored">Prompts trained without a generated and a scored entry: a bug.</param>
/// <param name="Uncommitted">Learner entries that never became durable (a crashed learner's last steps, redone after its restart).</param>
/// <param name="RegeneratedPrompts">Prompts generated more than once (a generator died after publishing, before acknowledging).</param>
/// <param name="TornLines">Unreadable lines (a line cut by a kill).</param>
/// <param name="Deliveries">Kafka messages handed to readers (<see cref="LedgerEvent.Delivered"/> lines; 0 without a Kafka bus).</param>
/// <param name="Redelivered">Kafka messages handed to readers of one group more than once, counted across every process and restart.</param>
/// <param name="MostDeliveries">The highest delivery count of any Kafka message to one group.</param>
public sealed record LedgerReport(int Published, int Trained, int DroppedStale, IReadOnlyList<string> TrainedTwice, IReadOnlyList<string> Missing,
    IReadOnlyList<string> NeverGeneratedOrScored, int Uncommitted, int RegeneratedPrompts, int TornLines, int Deliveries = 0, int Redelivered = 0,
    int MostDeliveries = 0)
{
    /// <summary>True when nothing was trained twice, nothing is missing and every trained prompt was generated and scored.</summary>
    public bool Ok => TrainedTwice.Count == 0 && Missing.Count == 0 && NeverGeneratedOrScored.Count == 0;

    /// <summary>A readable summary naming the first offending prompts.</summary>
    public override string ToString()
    {
        static string Few(IReadOnlyList<string> ids) => ids.Count == 0 ? "0" : $"{ids.Count} ({string.Join(", ", ids.Take(5))}{(ids.Count > 5 ? ", ..." : "")})";
        return $"{(Ok ? "OK" : "FAILED")}: published {Published}, trained {Trained}, dropped stale {DroppedStale}; " +
               $"trained twice {Few(TrainedTwice)}; missing {Few(Missing)}; trained but not generated/scored {Few(NeverGeneratedOrScored)}; " +
               $"uncommitted learner entries {Uncommitted}; prompts generated more than once {RegeneratedPrompts}; torn lines {TornLines}" +
               (Deliveries > 0 ? $"; Kafka deliveries {Deliveries}, messages redelivered {Redelivered}, most deliveries of one message {MostDeliveries}" : "");
    }
}

/// <summary>Reads and checks the ledger files of a run.</summary>
public static class Ledger
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>
    /// Checks every <c>*.jsonl</c> file in <paramref name="directory"/>: per prompt, generated (at least once),
    /// scored, and trained exactly once or dropped stale; nothing published is missing. The learner's entries
    /// (from all its incarnations, ordered by time) count only when committed: a <see cref="LedgerEvent.Committed"/>
    /// entry makes the entries of its commit number (and earlier) final; a <see cref="LedgerEvent.Restored"/> entry
    /// does the same for the restored checkpoint's commit (a kill may come between a checkpoint and its ledger line)
    /// and discards the later ones (that learner died before they became durable).
    /// </summary>
    public static LedgerReport Verify(string directory)
    {
        var entries = Read(directory, out var torn);
        var published = new HashSet<string>();
        var generated = new Dictionary<string, int>();
        var scored = new HashSet<string>();
        var deliveries = new Dictionary<(string?, string?, string?), int>();
        foreach (var (entry, _, _) in entries)
        {
            switch (entry.Event)
            {
                case LedgerEvent.Published: published.Add(entry.PromptId); break;
                case LedgerEvent.Generated: generated[entry.PromptId] = generated.GetValueOrDefault(entry.PromptId) + 1; break;
                case LedgerEvent.Scored: scored.Add(entry.PromptId); break;
                case LedgerEvent.Delivered:
                    var message = (entry.Group, entry.Topic, entry.Message);
                    deliveries[message] = deliveries.GetValueOrDefault(message) + 1;
                    break;
            }
        }

        var learnerEntries = entries.Where(e => e.Entry.Event is LedgerEvent.Trained or LedgerEvent.DroppedStale or LedgerEvent.Committed or LedgerEvent.Restored)
            .OrderBy(e => e.Entry.UnixMs).ThenBy(e => e.File).ThenBy(e => e.Line).Select(e => e.Entry);
        var pending = new List<LedgerEntry>();
        var final = new List<LedgerEntry>();
        var uncommitted = 0;
        foreach (var entry in learnerEntries)
        {
            switch (entry.Event)
            {
                case LedgerEvent.Committed:
                    final.AddRange(pending.Where(p => p.Commit <= entry.Commit));
                    pending.RemoveAll(p => p.Commit <= entry.Commit);
                    break;
                case LedgerEvent.Restored:
                    final.AddRange(pending.Where(p => p.Commit <= entry.Commit));
                    uncommitted += pending.Count(p => p.Commit > entry.Commit);
                    pending.Clear();
                    break;
                default:
                    pending.Add(entry);
                    break;
            }
        }
        uncommitted += pending.Count;

        var consumed = final.GroupBy(e => e.PromptId).ToDictionary(g => g.Key, g => g.ToList());
        var trainedTwice = consumed.Where(kv => kv.Value.Count > 1).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        var missing = published.Where(p => !consumed.ContainsKey(p)).Order(StringComparer.Ordinal).ToList();
        var trained = consumed.Where(kv => kv.Value.Any(e => e.Event == LedgerEvent.Trained)).Select(kv => kv.Key).ToList();
        var unexplained = trained.Where(p => !generated.ContainsKey(p) || !scored.Contains(p)).Order(StringComparer.Ordinal).ToList();
        return new LedgerReport(published.Count, trained.Count, consumed.Count(kv => kv.Value.All(e => e.Event == LedgerEvent.DroppedStale)),
            trainedTwice, missing, unexplained, uncommitted, generated.Count(kv => kv.Value > 1), torn,
            deliveries.Values.Sum(), deliveries.Values.Count(n => n > 1), deliveries.Values.DefaultIfEmpty(0).Max());
    }

    /// <summary>
    /// Every readable entry of every <c>*.jsonl</c> file in <paramref name="directory"/> (files in name order, lines in
    /// file order), for timelines and checks of one's own; lines cut by a kill are skipped and counted.
    /// </summary>
    /// <param name="directory">The ledger directory.</param>
    /// <param name="tornLines">Unreadable lines.</param>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public static IReadOnlyList<LedgerEntry> Entries(string directory, out int tornLines) =>
        Read(directory, out tornLines).Select(e => e.Entry).ToList();

    private static List<(LedgerEntry Entry, int File, int Line)> Read(string directory, out int tornLines)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"ledger directory not found: {directory}");
        var entries = new List<(LedgerEntry Entry, int File, int Line)>();
        tornLines = 0;
        var files = Directory.GetFiles(directory, "*.jsonl").Order(StringComparer.Ordinal).ToList();
        for (var f = 0; f < files.Count; f++)
        {
            var lineNumber = 0;
            foreach (var line in File.ReadLines(files[f]))
            {
                lineNumber++;
                if (line.Length == 0) continue;
                try
                {
                    entries.Add((JsonSerializer.Deserialize<LedgerEntry>(line, Json) ?? throw new JsonException("null"), f, lineNumber));
                }
                catch (JsonException)
                {
                    tornLines++;
                }
            }
        }
        return entries;
    }

    /// <summary>Parses a Kafka message position "partition:offset" (<see cref="LedgerEntry.Message"/>).</summary>
    public static bool TryParsePosition(string position, out int partition, out long offset)
    {
        offset = 0;
        var colon = position.IndexOf(':', StringComparison.Ordinal);
        return int.TryParse(position.AsSpan(0, Math.Max(colon, 0)), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out partition)
               && long.TryParse(position.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out offset);
    }
}
