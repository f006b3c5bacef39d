using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace OnlineRl.Messaging.Kafka;

/// <summary>
/// One Kafka consumer of a <see cref="KafkaEventBus"/> (what <see cref="KafkaEventBus.Subscribe"/> returns).
/// </summary>
/// <remarks>A dedicated poll thread owns the Confluent consumer (fetching, rebalance callbacks, offset stores,
/// commits, pause/resume); readers and acknowledgers only touch the shared state under a lock.</remarks>
public sealed partial class KafkaSubscription : IEventSubscription
{
    /// <summary>How long one poll waits for a message.</summary>
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>How often the acknowledged prefix is handed to librdkafka while consuming; librdkafka commits
    /// what was handed over in the background (<see cref="KafkaEventBus.CommitInterval"/>).</summary>
    private static readonly TimeSpan StoreInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>How long the poll thread waits for the reader to make room in a full buffer before it pauses
    /// fetching. Pausing discards librdkafka's prefetched messages and the fetch restarts only after the resume
    /// (measured with a 64-message buffer and a fast reader: 500 messages took 6 s instead of 40 ms), while a
    /// short wait without polling only delays rebalance callbacks a little.</summary>
    private static readonly TimeSpan RoomWait = TimeSpan.FromSeconds(1);

    private readonly KafkaEventBus _bus;
    private readonly IConsumer<string, byte[]> _consumer;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    // Guarded by _gate:
    private readonly Dictionary<int, PartitionState> _partitions = [];
    private readonly Queue<(BusMessage Message, int Partition, int Generation)> _ready = new();
    private TaskCompletionSource _readyChanged = NewSignal();
    /// <summary>Set when the reader has taken the buffer down to half its limit.</summary>
    private readonly ManualResetEventSlim _roomMade = new();
    private int _generations;
    private bool _disposed;
    private Exception? _failure;
    // Poll thread only:
    private bool _paused;
    private Task _pollLoop = Task.CompletedTask;

    internal KafkaSubscription(KafkaEventBus bus, string topic, string groupId, string consumerId, Dictionary<string, string> config)
    {
        _bus = bus;
        Topic = topic;
        GroupId = groupId;
        ConsumerId = consumerId;
        // Rebalance callbacks run on the poll thread inside Consume/Close.
        _consumer = KafkaEventBus.BuildClient(() => new ConsumerBuilder<string, byte[]>(config)
            .SetLogHandler((_, log) => bus.LogClient(log))
            .SetErrorHandler((_, error) => bus.OnClientError(consumerId, error))
            .SetPartitionsAssignedHandler((_, partitions) => OnAssigned(partitions))
            .SetPartitionsRevokedHandler((_, partitions) => OnRevoked(partitions))
            .SetPartitionsLostHandler((_, partitions) => OnLost(partitions))
            .Build());
    }

    /// <inheritdoc />
    public string Topic { get; }

    /// <inheritdoc />
    public string GroupId { get; }

    /// <inheritdoc />
    public string ConsumerId { get; }

    /// <summary>The partitions of <see cref="Topic"/> the group assigns to this consumer now (empty before the
    /// first assignment and while a rebalance is in progress), in ascending order.</summary>
    public IReadOnlyList<int> AssignedPartitions
    {
        get
        {
            lock (_gate) return _partitions.Keys.Order().ToArray();
        }
    }

    internal void Start() =>
        _pollLoop = Task.Factory.StartNew(PollLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <inheritdoc />
    public async ValueTask<BusMessage> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Task changed;
            BusMessage? handed = null;
            lock (_gate)
            {
                ThrowIfUnusable();
                while (_ready.TryDequeue(out var item))
                {
                    // Items of a partition revoked since they were queued belong to its new owner now.
                    if (_ready.Count <= _bus.Options.MaxBufferedMessagesPerSubscription / 2) _roomMade.Set();
                    if (_partitions.TryGetValue(item.Partition, out var state) && state.Generation == item.Generation)
                    {
                        handed = item.Message;
                        state.Handed.Add(ParseId(handed).Offset);
                        break;
                    }
                }
                changed = _readyChanged.Task;
            }
            if (handed is not null)
            {
                // Counted when handed to the reader (not when prefetched), outside the lock: a shared journal writes a file.
                var (partition, offset) = ParseId(handed);
                return handed with { DeliveryCount = _bus.Deliveries.Record(GroupId, Topic, partition, offset, handed.Key) };
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public ValueTask AckAsync(BusMessage message, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (partition, offset) = ParseId(message);
        lock (_gate)
        {
            ThrowIfUnusable();
            // A partition revoked meanwhile: its new owner reads the message again (at least once).
            if (_partitions.TryGetValue(partition, out var state))
            {
                state.Unacked.Remove(offset);
                state.Handed.Remove(offset);
            }
        }
        _bus.Deliveries.Acknowledged(GroupId, Topic, partition, offset);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask NackAsync(BusMessage message, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (partition, offset) = ParseId(message);
        lock (_gate)
        {
            ThrowIfUnusable();
            // Only a message this consumer holds now goes back (not one acknowledged, nacked or revoked already).
            if (!_partitions.TryGetValue(partition, out var state) || !state.Handed.Remove(offset))
                return ValueTask.CompletedTask;
            _ready.Enqueue((message, partition, state.Generation)); // counted again when handed out
            Pulse();
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>Leaves the group: commits acknowledged work; unacknowledged messages go to the partitions' next owners.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            Pulse();
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        await _pollLoop.ConfigureAwait(false);
        _bus.Forget(this);
        _stop.Dispose();
        _roomMade.Dispose();
    }

    private void PollLoop()
    {
        try
        {
            _bus.EnsureTopicAsync(Topic).Wait(_stop.Token);
            _consumer.Subscribe(Topic);
            var lastStore = Stopwatch.StartNew();
            while (!_stop.IsCancellationRequested)
            {
                WaitForRoom();
                UpdatePause();
                try
                {
                    var result = _consumer.Consume(PollInterval);
                    if (result?.Message is not null) Enqueue(result);
                }
                catch (ConsumeException e) when (!e.Error.IsFatal)
                {
                    KafkaEventBus.LogClientError(_bus.Logger, ConsumerId, e.Error.Code, e.Error.Reason, fatal: false);
                }
                if (lastStore.Elapsed >= StoreInterval)
                {
                    StoreAcknowledged();
                    lastStore.Restart();
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            LogConsumerFailed(_bus.Logger, e, Topic, GroupId, ConsumerId);
            lock (_gate)
            {
                _failure = e;
                Pulse();
            }
        }
        finally
        {
            Leave();
        }
    }

    /// <summary>Commits what is acknowledged and closes the consumer (the revoke callback commits again and
    /// forgets the rest), so the group rebalances at once instead of after the session timeout.</summary>
    private void Leave()
    {
        try
        {
            CommitAcknowledged();
            _consumer.Close();
        }
        catch (Exception e) when (e is KafkaException or InvalidOperationException)
        {
            LogConsumerFailed(_bus.Logger, e, Topic, GroupId, ConsumerId);
        }
        finally
        {
            _consumer.Dispose();
        }
    }

    private void Enqueue(ConsumeResult<string, byte[]> result)
    {
        var partition = result.Partition.Value;
        var offset = result.Offset.Value;
        var message = new BusMessage
        {
            Topic = Topic,
            Key = result.Message.Key ?? "",
            Payload = result.Message.Value ?? [],
            Headers = FromKafkaHeaders(result.Message.Headers),
            Id = KafkaEventBus.MessageId(partition, offset),
            DeliveryCount = 0, // set when handed to the reader
            Timestamp = result.Message.Timestamp.UtcDateTime,
        };
        lock (_gate)
        {
            if (!_partitions.TryGetValue(partition, out var state)) return; // not ours (any more)
            state.Unacked.Add(offset);
            state.NextOffset = Math.Max(state.NextOffset, offset + 1);
            _ready.Enqueue((message, partition, state.Generation));
            Pulse();
        }
    }

    /// <summary>While the buffer is full and fetching is not paused, waits up to <see cref="RoomWait"/> for the
    /// reader to take it down to half the limit; a reader that is just briefly behind thus never causes a pause.</summary>
    private void WaitForRoom()
    {
        if (_paused) return;
        lock (_gate)
        {
            if (_ready.Count < _bus.Options.MaxBufferedMessagesPerSubscription) return;
            _roomMade.Reset();
        }
        _roomMade.Wait(RoomWait, _stop.Token);
    }

    /// <summary>Pauses fetching while the reader is behind, resumes at half the limit.</summary>
    private void UpdatePause()
    {
        int buffered;
        lock (_gate) buffered = _ready.Count;
        var limit = _bus.Options.MaxBufferedMessagesPerSubscription;
        if (!_paused && buffered >= limit)
        {
            _consumer.Pause(_consumer.Assignment);
            _paused = true;
        }
        else if (_paused && buffered <= limit / 2)
        {
            _consumer.Resume(_consumer.Assignment);
            _paused = false;
        }
    }

    /// <summary>
    /// Hands librdkafka, for every partition (or the given ones) whose acknowledged prefix grew, the offset after
    /// that prefix. librdkafka's background auto commit sends stored offsets to the group coordinator, so the poll
    /// thread never waits for a commit round trip while consuming (measured: a synchronous commit every 100 ms
    /// held the poll thread up to 46 ms under load). Only offsets stored here are ever committed
    /// (enable.auto.offset.store is off).
    /// </summary>
    private void StoreAcknowledged(IEnumerable<int>? only = null)
    {
        var stores = new List<TopicPartitionOffset>();
        lock (_gate)
        {
            foreach (var (partition, state) in _partitions)
            {
                if (only is not null && !only.Contains(partition)) continue;
                var position = state.CommitPosition;
                if (position > state.Stored) stores.Add(new TopicPartitionOffset(Topic, partition, position));
            }
        }
        var stored = new List<TopicPartitionOffset>();
        foreach (var offset in stores)
        {
            try
            {
                _consumer.StoreOffset(offset);
                stored.Add(offset);
            }
            catch (KafkaException e)
            {
                // E.g. the partition is being revoked: the revoke callback stores and commits again.
                LogCommitFailed(_bus.Logger, Topic, GroupId, ConsumerId, e.Error.Reason);
            }
        }
        lock (_gate)
        {
            foreach (var offset in stored)
                if (_partitions.TryGetValue(offset.Partition.Value, out var state))
                    state.Stored = Math.Max(state.Stored, offset.Offset.Value);
        }
    }

    /// <summary>Stores and synchronously commits the acknowledged prefix of every partition (or the given ones):
    /// before partitions go to another consumer and when leaving, the commit must be done before moving on.</summary>
    private void CommitAcknowledged(IEnumerable<int>? only = null)
    {
        StoreAcknowledged(only);
        var commits = new List<TopicPartitionOffset>();
        lock (_gate)
        {
            foreach (var (partition, state) in _partitions)
                if ((only is null || only.Contains(partition)) && state.Stored >= 0)
                    commits.Add(new TopicPartitionOffset(Topic, partition, state.Stored));
        }
        if (commits.Count == 0) return;
        try
        {
            _consumer.Commit(commits);
        }
        catch (KafkaException e)
        {
            // E.g. a rebalance in progress: the stored offsets are committed by librdkafka's unassign or close.
            LogCommitFailed(_bus.Logger, Topic, GroupId, ConsumerId, e.Error.Reason);
        }
    }

    private void OnAssigned(List<TopicPartition> partitions)
    {
        lock (_gate)
        {
            foreach (var partition in partitions)
                _partitions[partition.Partition.Value] = new PartitionState(++_generations);
        }
        _paused = false; // a new assignment starts unpaused; the next poll pauses it again if needed
        LogAssigned(_bus.Logger, Topic, GroupId, ConsumerId, string.Join(",", partitions.Select(p => p.Partition.Value)));
    }

    private void OnRevoked(List<TopicPartitionOffset> partitions)
    {
        var revoked = partitions.Select(p => p.Partition.Value).ToHashSet();
        CommitAcknowledged(revoked);
        Drop(revoked);
        LogRevoked(_bus.Logger, Topic, GroupId, ConsumerId, string.Join(",", revoked));
    }

    private void OnLost(List<TopicPartitionOffset> partitions)
    {
        // Lost (e.g. session timed out): another member may own them already, so no commit.
        Drop(partitions.Select(p => p.Partition.Value).ToHashSet());
    }

    /// <summary>Forgets revoked partitions: their queued and in-flight messages belong to the new owner.</summary>
    private void Drop(HashSet<int> partitions)
    {
        lock (_gate)
            foreach (var partition in partitions)
                _partitions.Remove(partition);
    }

    private (int Partition, long Offset) ParseId(BusMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!string.Equals(message.Topic, Topic, StringComparison.Ordinal))
            throw new ArgumentException($"Message of topic '{message.Topic}' given to a subscription of topic '{Topic}'.", nameof(message));
        var colon = message.Id.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0
            && int.TryParse(message.Id.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var partition)
            && long.TryParse(message.Id.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
            return (partition, offset);
        throw new ArgumentException($"'{message.Id}' is not a Kafka message id (partition:offset).", nameof(message));
    }

    private static IReadOnlyDictionary<string, string> FromKafkaHeaders(Headers? headers)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (headers is null) return result;
        foreach (var header in headers)
        {
            var value = header.GetValueBytes();
            result[header.Key] = value is null ? "" : Encoding.UTF8.GetString(value);
        }
        return result;
    }

    /// <summary>The brokers refused the bus's credentials or TLS: waiting readers fail with the reason.</summary>
    internal void Refused()
    {
        lock (_gate) Pulse();
    }

    private void ThrowIfUnusable()
    {
        if (_bus.Refusal is { } refusal) throw refusal;
        if (_bus.IsDisposed || _disposed)
            throw new ObjectDisposedException(nameof(IEventSubscription),
                $"The Kafka subscription of consumer '{ConsumerId}' (group '{GroupId}', topic '{Topic}') has been disposed.");
        if (_failure is not null)
            throw new InvalidOperationException(
                $"The Kafka consumer '{ConsumerId}' (group '{GroupId}', topic '{Topic}') failed: {_failure.Message}", _failure);
    }

    /// <summary>Wakes waiting readers. Call under _gate.</summary>
    private void Pulse()
    {
        var old = _readyChanged;
        _readyChanged = NewSignal();
        old.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>This consumer's view of one assigned partition. Guarded by _gate.</summary>
    private sealed class PartitionState(int generation)
    {
        /// <summary>Which assignment this is: queued messages of an earlier one are stale.</summary>
        public readonly int Generation = generation;
        /// <summary>Fetched, not yet acknowledged offsets (queued, held by the reader, or waiting after a nack).</summary>
        public readonly SortedSet<long> Unacked = [];
        /// <summary>Offsets the reader holds now (received, neither acknowledged nor nacked).</summary>
        public readonly HashSet<long> Handed = [];
        /// <summary>The offset after the highest fetched one; -1 before the first.</summary>
        public long NextOffset = -1;
        /// <summary>The last offset this consumer stored for commit; -1 none.</summary>
        public long Stored = -1;

        /// <summary>The committable offset: the oldest unacknowledged one, else the one after the last fetched.</summary>
        public long CommitPosition => Unacked.Count > 0 ? Unacked.Min : NextOffset;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Kafka consumer {Consumer} (group {Group}, topic {Topic}) failed")]
    private static partial void LogConsumerFailed(ILogger logger, Exception exception, string topic, string group, string consumer);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Commit of {Consumer} (group {Group}, topic {Topic}) failed: {Reason}")]
    private static partial void LogCommitFailed(ILogger logger, string topic, string group, string consumer, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kafka consumer {Consumer} (group {Group}, topic {Topic}) assigned partitions {Partitions}")]
    private static partial void LogAssigned(ILogger logger, string topic, string group, string consumer, string partitions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kafka consumer {Consumer} (group {Group}, topic {Topic}) revoked partitions {Partitions}")]
    private static partial void LogRevoked(ILogger logger, string topic, string group, string consumer, string partitions);
}
