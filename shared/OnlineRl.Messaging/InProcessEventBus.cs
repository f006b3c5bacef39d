using System.Collections.Concurrent;
using System.Globalization;

namespace OnlineRl.Messaging;

/// <summary>Settings of an <see cref="InProcessEventBus"/>.</summary>
public sealed record InProcessEventBusOptions
{
    /// <summary>The default topic capacity: 10,000 messages.</summary>
    public const int DefaultTopicCapacity = 10_000;

    /// <summary>How many messages a topic retains before <see cref="IEventBus.PublishAsync"/> waits, unless
    /// <see cref="TopicCapacities"/> names the topic.</summary>
    public int DefaultCapacity { get; init; } = DefaultTopicCapacity;

    /// <summary>Capacity per topic name, overriding <see cref="DefaultCapacity"/>.</summary>
    public IReadOnlyDictionary<string, int> TopicCapacities { get; init; } = new Dictionary<string, int>();

    /// <summary>The clock for <see cref="BusMessage.Timestamp"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// The embedded <see cref="IEventBus"/>: one retained log per topic in memory, consumer groups with
/// per-message acknowledgement, redelivery and backpressure. Thread-safe. For one-machine runs and tests.
/// </summary>
/// <remarks>
/// <para>Retention and backpressure: a topic keeps every message that some known consumer group has not
/// acknowledged (and, before any group has subscribed, every message). A group is known from its first
/// subscription until <see cref="DeleteGroup"/> or the end of the bus, as with Kafka's committed offsets.
/// When a topic holds its capacity, <see cref="PublishAsync"/> waits until the slowest known group
/// acknowledges the oldest retained message. A group that first subscribes late starts at the oldest
/// retained message: messages every earlier group had acknowledged are gone.</para>
/// <para>Disposing the bus ends pending and later calls with <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed class InProcessEventBus : IEventBus
{
    private readonly InProcessEventBusOptions _options;
    private readonly ConcurrentDictionary<string, TopicLog> _topics = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    /// <summary>Creates an empty bus.</summary>
    /// <param name="options">Settings (default: <see cref="InProcessEventBusOptions"/> defaults).</param>
    public InProcessEventBus(InProcessEventBusOptions? options = null)
    {
        _options = options ?? new InProcessEventBusOptions();
        ArgumentNullException.ThrowIfNull(_options.TopicCapacities);
        ArgumentNullException.ThrowIfNull(_options.TimeProvider);
        if (_options.DefaultCapacity < 1)
            throw new ArgumentOutOfRangeException(nameof(options), _options.DefaultCapacity, "DefaultCapacity must be at least 1.");
        foreach (var (topic, capacity) in _options.TopicCapacities)
            if (capacity < 1)
                throw new ArgumentOutOfRangeException(nameof(options), capacity, $"Capacity of topic '{topic}' must be at least 1.");
    }

    /// <inheritdoc />
    public async ValueTask<string> PublishAsync(string topic, string key, ReadOnlyMemory<byte> payload,
        IReadOnlyDictionary<string, string>? headers = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(key);
        ThrowIfDisposed();
        var log = GetTopic(topic);
        // Copy outside the lock: the caller may reuse its buffers once we return.
        var copiedHeaders = headers is null || headers.Count == 0
            ? EmptyHeaders
            : new Dictionary<string, string>(headers, StringComparer.Ordinal);
        var entry = new Entry(key, payload.ToArray(), copiedHeaders, _options.TimeProvider.GetUtcNow());
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Task spaceFreed;
            lock (log.Gate)
            {
                ThrowIfDisposed();
                if (log.Count < log.Capacity)
                {
                    var seq = log.Append(entry);
                    return seq.ToString(CultureInfo.InvariantCulture);
                }
                spaceFreed = log.SpaceFreed.Task;
            }
            await spaceFreed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public IEventSubscription Subscribe(string topic, string groupId, string consumerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(consumerId);
        ThrowIfDisposed();
        var log = GetTopic(topic);
        lock (log.Gate)
        {
            ThrowIfDisposed();
            if (!log.Groups.TryGetValue(groupId, out var group))
                log.Groups.Add(groupId, group = new Group(groupId, log.BaseSeq));
            if (group.Consumers.ContainsKey(consumerId))
                throw new InvalidOperationException(
                    $"Consumer '{consumerId}' is already subscribed to topic '{topic}' in group '{groupId}'.");
            var subscription = new Subscription(this, log, group, consumerId);
            group.Consumers.Add(consumerId, subscription);
            return subscription;
        }
    }

    /// <summary>
    /// Forgets a consumer group (its progress and its hold on retention). Its live subscriptions end with
    /// <see cref="ObjectDisposedException"/>. Returns false when the group is unknown.
    /// </summary>
    /// <param name="topic">The topic.</param>
    /// <param name="groupId">The group.</param>
    public bool DeleteGroup(string topic, string groupId)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        if (!_topics.TryGetValue(topic, out var log)) return false;
        lock (log.Gate)
        {
            if (!log.Groups.Remove(groupId, out var group)) return false;
            group.Deleted = true;
            Pulse(ref group.Changed);
            log.Trim();
            return true;
        }
    }

    /// <summary>How many messages the topic retains now (0 for an unknown topic).</summary>
    /// <param name="topic">The topic.</param>
    public int RetainedCount(string topic)
    {
        if (!_topics.TryGetValue(topic, out var log)) return 0;
        lock (log.Gate) return log.Count;
    }

    /// <summary>
    /// How many messages of the topic the group has not acknowledged yet (in flight, waiting for redelivery,
    /// or never delivered); null when the group is unknown.
    /// </summary>
    /// <param name="topic">The topic.</param>
    /// <param name="groupId">The group.</param>
    public long? Lag(string topic, string groupId)
    {
        if (!_topics.TryGetValue(topic, out var log)) return null;
        lock (log.Gate)
            return log.Groups.TryGetValue(groupId, out var g) ? UnackedCount(log, g) : null;
    }

    /// <summary>The lag (as in <see cref="Lag"/>) of every group of every topic, for <see cref="MessagingMetrics.TrackConsumerLag"/>.</summary>
    public IReadOnlyList<ConsumerLag> ConsumerLags()
    {
        var lags = new List<ConsumerLag>();
        foreach (var log in _topics.Values)
            lock (log.Gate)
                foreach (var group in log.Groups.Values)
                    lags.Add(new ConsumerLag(log.Name, group.Id, UnackedCount(log, group)));
        return lags;
    }

    /// <summary>Messages of the log the group has not acknowledged. Call under the topic lock.</summary>
    private static long UnackedCount(TopicLog log, Group group) => log.NextSeq - group.Committed - group.AckedAhead.Count;

    /// <summary>Ends the bus: pending and later receives and publishes fail with <see cref="ObjectDisposedException"/>.</summary>
    public ValueTask DisposeAsync()
    {
        if (_disposed) return ValueTask.CompletedTask;
        _disposed = true;
        foreach (var log in _topics.Values)
        {
            lock (log.Gate)
            {
                Pulse(ref log.SpaceFreed);
                foreach (var group in log.Groups.Values) Pulse(ref group.Changed);
            }
        }
        return ValueTask.CompletedTask;
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyHeaders =
        new Dictionary<string, string>(StringComparer.Ordinal).AsReadOnly();

    private TopicLog GetTopic(string topic) =>
        _topics.GetOrAdd(topic, static (name, options) =>
            new TopicLog(name, options.TopicCapacities.TryGetValue(name, out var c) ? c : options.DefaultCapacity), _options);

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(InProcessEventBus), "The event bus has been disposed.");
    }

    /// <summary>Wakes everyone waiting on a signal and arms a fresh one. Call under the topic lock.</summary>
    private static void Pulse(ref TaskCompletionSource signal)
    {
        var old = signal;
        signal = NewSignal();
        old.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed record Entry(string Key, byte[] Payload, IReadOnlyDictionary<string, string> Headers, DateTimeOffset Timestamp);

    /// <summary>One topic: the retained log (sequence numbers BaseSeq..NextSeq-1) and its groups. Guarded by Gate.</summary>
    private sealed class TopicLog(string name, int capacity)
    {
        private readonly List<Entry> _entries = []; // _entries[_head..] are retained, _entries[_head] has BaseSeq
        private int _head;

        public readonly Lock Gate = new();
        public readonly string Name = name;
        public readonly int Capacity = capacity;
        public readonly Dictionary<string, Group> Groups = new(StringComparer.Ordinal);
        public TaskCompletionSource SpaceFreed = NewSignal();
        public long BaseSeq;

        public int Count => _entries.Count - _head;
        public long NextSeq => BaseSeq + Count;

        public long Append(Entry entry)
        {
            var seq = NextSeq;
            _entries.Add(entry);
            foreach (var group in Groups.Values) Pulse(ref group.Changed);
            return seq;
        }

        public Entry At(long seq) => _entries[_head + (int)(seq - BaseSeq)];

        /// <summary>Drops the messages every known group has acknowledged (none while no group is known).</summary>
        public void Trim()
        {
            if (Groups.Count == 0) return;
            var floor = long.MaxValue;
            foreach (var group in Groups.Values) floor = Math.Min(floor, group.Committed);
            if (floor <= BaseSeq) return;
            var drop = (int)(floor - BaseSeq);
            System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_entries).Slice(_head, drop).Clear(); // release the payloads now
            _head += drop;
            BaseSeq = floor;
            if (_head >= 1024 && _head >= _entries.Count / 2)
            {
                _entries.RemoveRange(0, _head);
                _head = 0;
            }
            Pulse(ref SpaceFreed);
        }
    }

    /// <summary>A consumer group's progress on one topic. Guarded by the topic's Gate.</summary>
    private sealed class Group(string id, long start)
    {
        public readonly string Id = id;
        /// <summary>Every sequence number below this is acknowledged.</summary>
        public long Committed = start;
        /// <summary>The next sequence number never delivered to this group.</summary>
        public long NextNew = start;
        /// <summary>Acknowledged sequence numbers at or above Committed.</summary>
        public readonly HashSet<long> AckedAhead = [];
        /// <summary>Delivered, unacknowledged messages waiting to be delivered again.</summary>
        public readonly SortedSet<long> Redeliver = [];
        /// <summary>Delivered, unacknowledged messages and the consumer holding each (null: none, waiting in Redeliver).</summary>
        public readonly Dictionary<long, (Subscription? Holder, int Deliveries)> Unacked = [];
        public readonly Dictionary<string, Subscription> Consumers = new(StringComparer.Ordinal);
        public TaskCompletionSource Changed = NewSignal();
        public bool Deleted;
    }

    private sealed class Subscription(InProcessEventBus bus, TopicLog log, Group group, string consumerId) : IEventSubscription
    {
        private readonly HashSet<long> _held = [];
        private bool _disposed;

        public string Topic => log.Name;
        public string GroupId => group.Id;
        public string ConsumerId => consumerId;

        public async ValueTask<BusMessage> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Task changed;
                lock (log.Gate)
                {
                    ThrowIfUnusable();
                    if (TryTake() is { } message) return message;
                    changed = group.Changed.Task;
                }
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>Hands this consumer the group's next message: redeliveries first, then new ones. Under the lock.</summary>
        private BusMessage? TryTake()
        {
            long seq;
            if (group.Redeliver.Count > 0)
            {
                seq = group.Redeliver.Min;
                group.Redeliver.Remove(seq);
            }
            else if (group.NextNew < log.NextSeq)
            {
                seq = group.NextNew++;
            }
            else
            {
                return null;
            }
            var deliveries = (group.Unacked.TryGetValue(seq, out var u) ? u.Deliveries : 0) + 1;
            group.Unacked[seq] = (this, deliveries);
            _held.Add(seq);
            var entry = log.At(seq);
            return new BusMessage
            {
                Topic = log.Name,
                Key = entry.Key,
                Payload = entry.Payload,
                Headers = entry.Headers,
                Id = seq.ToString(CultureInfo.InvariantCulture),
                DeliveryCount = deliveries,
                Timestamp = entry.Timestamp,
            };
        }

        public ValueTask AckAsync(BusMessage message, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var seq = SequenceOf(message);
            lock (log.Gate)
            {
                ThrowIfUnusable();
                if (seq < group.Committed || group.AckedAhead.Contains(seq)) return ValueTask.CompletedTask; // already done
                if (!group.Unacked.Remove(seq, out var state))
                    throw new InvalidOperationException(
                        $"Message {message.Id} of topic '{log.Name}' was never delivered to group '{group.Id}'.");
                state.Holder?._held.Remove(seq);
                group.Redeliver.Remove(seq);
                group.AckedAhead.Add(seq);
                var before = group.Committed;
                while (group.AckedAhead.Remove(group.Committed)) group.Committed++;
                if (group.Committed != before) log.Trim();
            }
            return ValueTask.CompletedTask;
        }

        public ValueTask NackAsync(BusMessage message, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var seq = SequenceOf(message);
            lock (log.Gate)
            {
                ThrowIfUnusable();
                // Only the current holder gives a message back; a late nack of an acknowledged or
                // already-redelivered message changes nothing.
                if (!_held.Remove(seq)) return ValueTask.CompletedTask;
                group.Unacked[seq] = (null, group.Unacked[seq].Deliveries);
                group.Redeliver.Add(seq);
                Pulse(ref group.Changed);
            }
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            lock (log.Gate)
            {
                if (_disposed) return ValueTask.CompletedTask;
                _disposed = true;
                if (group.Consumers.TryGetValue(consumerId, out var current) && ReferenceEquals(current, this))
                    group.Consumers.Remove(consumerId);
                foreach (var seq in _held)
                {
                    group.Unacked[seq] = (null, group.Unacked[seq].Deliveries);
                    group.Redeliver.Add(seq);
                }
                _held.Clear();
                Pulse(ref group.Changed);
            }
            return ValueTask.CompletedTask;
        }

        private long SequenceOf(BusMessage message)
        {
            ArgumentNullException.ThrowIfNull(message);
            if (!string.Equals(message.Topic, log.Name, StringComparison.Ordinal))
                throw new ArgumentException($"Message of topic '{message.Topic}' given to a subscription of topic '{log.Name}'.", nameof(message));
            if (!long.TryParse(message.Id, NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
                throw new ArgumentException($"'{message.Id}' is not an in-process message id.", nameof(message));
            return seq;
        }

        private void ThrowIfUnusable()
        {
            bus.ThrowIfDisposed();
            if (_disposed)
                throw new ObjectDisposedException(nameof(IEventSubscription),
                    $"The subscription of consumer '{consumerId}' (group '{group.Id}', topic '{log.Name}') has been disposed.");
            if (group.Deleted)
                throw new ObjectDisposedException(nameof(IEventSubscription),
                    $"Group '{group.Id}' of topic '{log.Name}' has been deleted.");
        }
    }
}
