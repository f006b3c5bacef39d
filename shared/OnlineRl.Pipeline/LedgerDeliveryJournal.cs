using System.Globalization;
using System.Text;
using System.Text.Json;
using OnlineRl.Messaging;

namespace OnlineRl.Pipeline;

/// <summary>
/// Kafka delivery counts kept in the run's ledger, so that they hold across process restarts: every hand-over of a
/// message to a reader is appended as a <see cref="LedgerEvent.Delivered"/> line (flushed before the reader sees the
/// message, so a kill -9 while handling it cannot lose the line), and a message's count is the number of such lines
/// for its group, topic and position in every ledger file of the run: those of this process, of its dead
/// predecessors and of the other consumers of the group.
/// </summary>
/// <remarks>
/// <para>Each service writes its own file (<c>SERVICE.deliveries.jsonl</c>, beside its ledger file) and reads the
/// new lines of all files before answering, so the run's processes must share the ledger directory (one machine,
/// or a shared volume). Without a ledger directory the Kafka bus counts per process.</para>
/// <para>Memory stays bounded: per (group, topic, partition) only the counts of the <see cref="Window"/> newest
/// offsets are kept. Kafka redelivers from a group's committed offset, which trails the newest delivered offset by
/// what its consumers hold unacknowledged (a batch, a learner step): far less than the window.</para>
/// <para>An acknowledged message can still come back after a crash (Kafka replays from the committed offset, which
/// never passes an unacknowledged message); such a replay is a delivery too, and counts.</para>
/// </remarks>
public sealed class LedgerDeliveryJournal : IDeliveryJournal, IDisposable
{
    /// <summary>Newest offsets per (group, topic, partition) whose counts are kept.</summary>
    public const int Window = 4096;

    /// <summary>The file suffix of delivery lines (<c>SERVICE.deliveries.jsonl</c>).</summary>
    public const string FileSuffix = ".deliveries";

    private static readonly byte[] DeliveredMarker = Encoding.UTF8.GetBytes("\"delivered\"");

    private readonly LedgerWriter writer;
    private readonly string directory;
    private readonly Lock gate = new();
    private readonly Dictionary<string, long> readUpTo = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Group, string Topic, int Partition), PartitionCounts> counts = [];

    /// <summary>Appends this service's deliveries to <c>DIR/SERVICE.deliveries.jsonl</c> and counts those of every file in <paramref name="ledgerDirectory"/>.</summary>
    /// <param name="ledgerDirectory">The run's ledger directory (<c>train.ledger_dir</c>).</param>
    /// <param name="serviceId">This service instance.</param>
    public LedgerDeliveryJournal(string ledgerDirectory, string serviceId)
    {
        directory = ledgerDirectory;
        writer = new LedgerWriter(ledgerDirectory, serviceId, FileSuffix);
    }

    /// <inheritdoc />
    public int Record(string group, string topic, int partition, long offset, string key)
    {
        var message = string.Create(CultureInfo.InvariantCulture, $"{partition}:{offset}");
        lock (gate)
        {
            writer.Write(new LedgerEntry(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), writer.ServiceId, LedgerEvent.Delivered, key,
                Group: group, Topic: topic, Message: message));
            ReadNewLines(); // includes the line just written
            return counts.TryGetValue((group, topic, partition), out var partitionCounts) ? partitionCounts.Of(offset) : 1;
        }
    }

    /// <inheritdoc />
    /// <remarks>Nothing to do: the message may still be replayed after a crash (see the class remarks), and
    /// <see cref="Window"/> bounds the memory.</remarks>
    public void Acknowledged(string group, string topic, int partition, long offset)
    {
    }

    /// <summary>Closes this service's file.</summary>
    public void Dispose() => writer.Dispose();

    /// <summary>Counts the delivery lines appended to any ledger file since the last look. Call under the gate.</summary>
    private void ReadNewLines()
    {
        foreach (var path in Directory.GetFiles(directory, "*.jsonl"))
        {
            var from = readUpTo.GetValueOrDefault(path);
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (file.Length <= from) continue;
            file.Position = from;
            var bytes = new byte[file.Length - from];
            file.ReadExactly(bytes);
            // Only whole lines: a line being written now is read next time.
            var end = Array.LastIndexOf(bytes, (byte)'\n') + 1;
            readUpTo[path] = from + end;
            foreach (var line in bytes.AsSpan(0, end).Split((byte)'\n'))
            {
                var text = bytes.AsSpan(0, end)[line];
                if (text.IndexOf(DeliveredMarker) < 0) continue;
                LedgerEntry? entry;
                try
                {
                    entry = JsonSerializer.Deserialize<LedgerEntry>(text, Ledger.Json);
                }
                catch (JsonException)
                {
                    continue; // a line torn by a kill
                }
                if (entry is { Event: LedgerEvent.Delivered, Group: { } group, Topic: { } topic, Message: { } position }
                    && Ledger.TryParsePosition(position, out var partition, out var offset))
                {
                    if (!counts.TryGetValue((group, topic, partition), out var partitionCounts))
                        counts[(group, topic, partition)] = partitionCounts = new PartitionCounts();
                    partitionCounts.Add(offset);
                }
            }
        }
    }

    /// <summary>Delivery counts of one partition's newest offsets.</summary>
    private sealed class PartitionCounts
    {
        private readonly Dictionary<long, int> byOffset = [];
        private long newest = -1;

        public int Of(long offset) => byOffset.GetValueOrDefault(offset);

        public void Add(long offset)
        {
            if (offset <= newest - Window) return; // long done
            byOffset[offset] = byOffset.GetValueOrDefault(offset) + 1;
            newest = Math.Max(newest, offset);
            if (byOffset.Count > 2 * Window)
                foreach (var old in byOffset.Keys.Where(o => o <= newest - Window).ToList()) byOffset.Remove(old);
        }
    }
}
