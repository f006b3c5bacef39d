using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OnlineRl.Messaging;
using StackExchange.Redis;

namespace OnlineRl.Redis;

/// <summary>
/// An <see cref="IEventBus"/> over Redis Streams (Redis 7): one stream per topic, one Redis consumer group
/// per bus consumer group, acknowledgement with XACK only when the service acknowledges.
/// </summary>
/// <remarks>
/// <para>Keys: the topic's stream is <c>{prefix}:stream:{topic}</c>; entries carry the fields <c>key</c>,
/// <c>payload</c> and <c>header:{name}</c>. Groups are created at id 0, so a group that first subscribes
/// late reads every entry still retained.</para>
/// <para>Redelivery: a nacked entry, the entries held by a consumer that leaves, and the entries of a
/// consumer idle longer than <see cref="RedisEventBusOptions.ClaimIdleAfter"/> (it died) are handed back to
/// the group and delivered again, oldest first, with Redis's delivery counter as
/// <see cref="BusMessage.DeliveryCount"/> (see <see cref="StreamScripts"/>). A subscription whose consumer id
/// was used by a dead process takes over that process's entries at once.</para>
/// <para>Retention and backpressure: trimming drops the entries every group has acknowledged (never an
/// unacknowledged one; nothing while no group exists). A publish into a topic that holds its capacity trims
/// it, then waits while it is still full; a new group trims before it starts, so it begins at the oldest
/// entry some existing group still needs. The capacity bounds the stream's length; nothing but
/// acknowledgement removes an entry.</para>
/// <para>Connection loss: every operation retries until the server is back (or the caller cancels); the
/// client reconnects on its own. With the server's append-only file on, a restart loses nothing. A publish
/// whose reply was lost in a disconnect is sent again, so a message may then appear twice: handlers are
/// idempotent anyway (at-least-once delivery). A receive whose reply was lost had claimed an entry in Redis;
/// the retry hands such entries (held in Redis, unknown to the subscription) back first.</para>
/// <para>Notifications: publishes and hand-backs announce themselves on pub/sub channels so waiting
/// receivers wake at once; <see cref="RedisEventBusOptions.PollInterval"/> bounds the wait when a
/// notification is lost.</para>
/// </remarks>
public sealed partial class RedisEventBus : IEventBus
{
    /// <summary>The pseudo-consumer holding entries given back for redelivery (bus consumer ids may not start with '~').</summary>
    private const string HandBackConsumer = "~handed-back";

    private readonly RedisEventBusOptions _options;
    private readonly ConnectionMultiplexer _connection;
    private readonly IDatabase _db;
    private readonly ConcurrentDictionary<string, TopicState> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Topic, string Group, string Consumer), Subscription> _live = new();
    private readonly CancellationTokenSource _disposing = new();
    private int _disposed;

    /// <summary>Connects to the server of <paramref name="options"/> (in the background when it is not up yet).</summary>
    /// <param name="options">Settings; <see cref="RedisEventBusOptions.Address"/> is required.</param>
    /// <exception cref="FormatException">The address is malformed.</exception>
    /// <exception cref="TransportAuthenticationException">The server refused the credentials or certificates.</exception>
    public RedisEventBus(RedisEventBusOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _connection = RedisConnection.Connect(options.Address, options.Tls);
        _db = _connection.GetDatabase();
    }

    /// <summary>The Redis key of a topic's stream.</summary>
    /// <param name="topic">The topic.</param>
    public string StreamKey(string topic) => $"{_options.KeyPrefix}:stream:{topic}";

    /// <inheritdoc />
    public async ValueTask<string> PublishAsync(string topic, string key, ReadOnlyMemory<byte> payload,
        IReadOnlyDictionary<string, string>? headers = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(key);
        ThrowIfDisposed();
        var state = Topic(topic);
        var arguments = new List<RedisValue>(6 + 2 * (headers?.Count ?? 0))
        {
            _options.CapacityOf(topic), state.NewEntryChannel, "key", key,
            // The call completes only after Redis has the bytes, so referencing the caller's buffer is safe.
            "payload", payload,
        };
        foreach (var (name, value) in headers ?? EmptyHeaders)
        {
            arguments.Add(HeaderPrefix + name);
            arguments.Add(value);
        }
        var argumentArray = arguments.ToArray();
        RedisKey[] keys = [state.StreamKey];
        while (true)
        {
            var spaceFreed = state.SpaceFreed.Next; // taken before the attempt: an acknowledgement in between still wakes us
            var id = await RetryAsync(() => _db.ScriptEvaluateAsync(StreamScripts.Publish, keys, argumentArray),
                cancellationToken, null).ConfigureAwait(false);
            if (!id.IsNull) return (string)id!;
            await WatchAcknowledgementsAsync(state).ConfigureAwait(false);
            await WaitAsync(spaceFreed, cancellationToken, null).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    /// <remarks>Creates the consumer group (at id 0) when it does not exist, and takes back the entries a
    /// dead process left under the same consumer id. Talks to the server synchronously.</remarks>
    /// <exception cref="ArgumentException">The consumer id starts with '~' (reserved).</exception>
    /// <exception cref="RedisConnectionException">The server cannot be reached.</exception>
    public IEventSubscription Subscribe(string topic, string groupId, string consumerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(consumerId);
        if (consumerId.StartsWith('~'))
            throw new ArgumentException($"Consumer id '{consumerId}' starts with '~', which the Redis bus reserves.", nameof(consumerId));
        ThrowIfDisposed();
        var state = Topic(topic);
        var subscription = new Subscription(this, state, groupId, consumerId);
        if (!_live.TryAdd((topic, groupId, consumerId), subscription))
            throw new InvalidOperationException($"Consumer '{consumerId}' is already subscribed to topic '{topic}' in group '{groupId}'.");
        try
        {
            WatchNewEntries(state);
            CreateGroup(state, groupId);
            // Entries still held under this consumer id belong to a dead predecessor (ids are unique among live consumers).
            _db.ScriptEvaluate(StreamScripts.HandBackAll, [state.StreamKey], subscription.HandBackArguments(deleteConsumer: false, keepHeld: false));
        }
        catch
        {
            _live.TryRemove((topic, groupId, consumerId), out _);
            throw;
        }
        subscription.StartMaintenance();
        return subscription;
    }

    /// <summary>
    /// Drops the entries of <paramref name="topic"/> that every consumer group has acknowledged and returns
    /// how many entries the topic still holds (0 for an unknown topic). Publishing into a full topic and
    /// subscribing a new group do this too.
    /// </summary>
    /// <param name="topic">The topic.</param>
    /// <param name="cancellationToken">Cancels the retries while the server is unreachable.</param>
    public async Task<long> TrimAsync(string topic, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ThrowIfDisposed();
        var retained = await RetryAsync(() => _db.ScriptEvaluateAsync(StreamScripts.Trim, [StreamKey(topic)]),
            cancellationToken, null).ConfigureAwait(false);
        return (long)retained;
    }

    /// <summary>
    /// Ends the bus: live subscriptions hand their unacknowledged entries back to their groups, pending and
    /// later calls fail with <see cref="ObjectDisposedException"/>, and the connection closes.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _disposing.CancelAsync().ConfigureAwait(false);
        foreach (var subscription in _live.Values) await subscription.DisposeAsync().ConfigureAwait(false);
        await _connection.CloseAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _disposing.Dispose();
    }

    private const string HeaderPrefix = "header:";

    private static readonly IReadOnlyDictionary<string, string> EmptyHeaders =
        new Dictionary<string, string>(StringComparer.Ordinal).AsReadOnly();

    private bool IsDisposed => Volatile.Read(ref _disposed) == 1;

    private void ThrowIfDisposed()
    {
        if (IsDisposed) throw new ObjectDisposedException(nameof(RedisEventBus), "The event bus has been disposed.");
    }

    private TopicState Topic(string topic) =>
        _topics.GetOrAdd(topic, static (name, bus) => new TopicState(name,
            bus.StreamKey(name),
            $"{bus._options.KeyPrefix}:new:{name}",
            $"{bus._options.KeyPrefix}:acked:{name}"), this);

    private void CreateGroup(TopicState state, string groupId) =>
        _db.ScriptEvaluate(StreamScripts.CreateGroup, [state.StreamKey], [groupId]);

    /// <summary>Wakes this process's receivers on the topic whenever an entry is added or handed back.</summary>
    private void WatchNewEntries(TopicState state)
    {
        lock (state)
        {
            if (state.WatchingNewEntries) return;
            _connection.GetSubscriber().Subscribe(RedisChannel.Literal(state.NewEntryChannel), (_, _) => state.NewEntries.Pulse());
            state.WatchingNewEntries = true;
        }
    }

    /// <summary>Wakes this process's blocked publishers on the topic whenever an entry is acknowledged.</summary>
    private async Task WatchAcknowledgementsAsync(TopicState state)
    {
        lock (state)
        {
            if (state.WatchingAcknowledgements is not null) return;
            state.WatchingAcknowledgements = _connection.GetSubscriber()
                .SubscribeAsync(RedisChannel.Literal(state.AcknowledgedChannel), (_, _) => state.SpaceFreed.Pulse());
        }
        try
        {
            await state.WatchingAcknowledgements.ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransient(e))
        {
            lock (state) state.WatchingAcknowledgements = null; // polling covers the gap; try again next time
        }
    }

    /// <summary>Waits for <paramref name="signal"/>, at most <see cref="RedisEventBusOptions.PollInterval"/>.</summary>
    private async Task WaitAsync(Task signal, CancellationToken cancellationToken, Subscription? subscription)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken,
            subscription?.Closing ?? _disposing.Token);
        try
        {
            await signal.WaitAsync(_options.PollInterval, linked.Token).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Look again anyway: a notification may have been lost.
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unusable(subscription);
        }
    }

    /// <summary>
    /// Runs a command, retrying while the server is unreachable or restarting, until the caller cancels or
    /// the bus (or <paramref name="subscription"/>) is disposed.
    /// </summary>
    private async Task<T> RetryAsync<T>(Func<Task<T>> command, CancellationToken cancellationToken, Subscription? subscription)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        var failures = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (IsDisposed || subscription?.IsClosed == true) throw Unusable(subscription);
            try
            {
                var result = await command().ConfigureAwait(false);
                if (failures > 0) _options.Logger.LogInformation("Redis at {Address} is reachable again after {Failures} failed attempts", RedisAddress.Describe(_options.Address), failures);
                return result;
            }
            catch (Exception e) when (RedisConnection.IsAuthenticationFailure(e))
            {
                throw RedisConnection.Refused(_options.Address, e);
            }
            catch (Exception e) when (IsTransient(e) && !IsDisposed)
            {
                if (failures++ == 0) _options.Logger.LogWarning("Redis at {Address} unreachable ({Error}); retrying", RedisAddress.Describe(_options.Address), e.Message);
            }
            await WaitAsync(Task.Delay(delay, cancellationToken), cancellationToken, subscription).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
    }

    private static bool IsTransient(Exception e) => RedisConnection.IsTransient(e);

    private ObjectDisposedException Unusable(Subscription? subscription) =>
        IsDisposed || subscription is null
            ? new ObjectDisposedException(nameof(RedisEventBus), "The event bus has been disposed.")
            : new ObjectDisposedException(nameof(IEventSubscription),
                $"The subscription of consumer '{subscription.ConsumerId}' (group '{subscription.GroupId}', topic '{subscription.Topic}') has been disposed.");

    /// <summary>A signal that wakes everyone waiting on <see cref="Next"/> and re-arms itself.</summary>
    private sealed class Signal
    {
        private TaskCompletionSource _next = New();

        public Task Next => Volatile.Read(ref _next).Task;

        public void Pulse() => Interlocked.Exchange(ref _next, New()).TrySetResult();

        private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class TopicState(string name, string streamKey, string newEntryChannel, string acknowledgedChannel)
    {
        public readonly string Name = name;
        public readonly string StreamKey = streamKey;
        /// <summary>Pub/sub channel announcing added and handed-back entries.</summary>
        public readonly string NewEntryChannel = newEntryChannel;
        /// <summary>Pub/sub channel announcing acknowledgements (space for blocked publishers).</summary>
        public readonly string AcknowledgedChannel = acknowledgedChannel;
        public readonly Signal NewEntries = new();
        public readonly Signal SpaceFreed = new();
        public bool WatchingNewEntries;
        public Task? WatchingAcknowledgements;
    }
}
