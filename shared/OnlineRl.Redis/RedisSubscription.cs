using System.Globalization;
using Microsoft.Extensions.Logging;
using OnlineRl.Messaging;
using StackExchange.Redis;

namespace OnlineRl.Redis;

// A subscription of the Redis Streams bus: one consumer of a consumer group on one topic's stream.
public sealed partial class RedisEventBus
{
    private sealed class Subscription(RedisEventBus bus, TopicState state, string groupId, string consumerId) : IEventSubscription
    {
        private readonly CancellationTokenSource _closing = CancellationTokenSource.CreateLinkedTokenSource(bus._disposing.Token);
        private readonly HashSet<string> _held = new(StringComparer.Ordinal);
        private readonly RedisKey[] _keys = [state.StreamKey];
        private Task _maintenance = Task.CompletedTask;
        private int _closed;

        public string Topic => state.Name;
        public string GroupId => groupId;
        public string ConsumerId => consumerId;
        public CancellationToken Closing => _closing.Token;
        public bool IsClosed => Volatile.Read(ref _closed) == 1;

        public void StartMaintenance() => _maintenance = Task.Run(MaintainAsync);

        public async ValueTask<BusMessage> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ThrowIfUnusable();
                var arrived = state.NewEntries.Next; // taken before looking: a publish in between still wakes us
                var attempts = 0;
                var entry = await RunAsync(async () =>
                {
                    // A failed attempt may have claimed an entry whose reply was lost: give such entries back first.
                    if (attempts++ > 0) await Evaluate(StreamScripts.HandBackAll, HandBackArguments(deleteConsumer: false, keepHeld: true)).ConfigureAwait(false);
                    return await Evaluate(StreamScripts.Receive, [groupId, consumerId, HandBackConsumer]).ConfigureAwait(false);
                }, cancellationToken).ConfigureAwait(false);
                if (!entry.IsNull)
                {
                    var message = ToMessage(entry);
                    lock (_held) _held.Add(message.Id);
                    if (!IsClosed) return message;
                    // Disposed while the entry was on its way: give it back to the group.
                    await GiveBackQuietlyAsync(message.Id).ConfigureAwait(false);
                    throw bus.Unusable(this);
                }
                await bus.WaitAsync(arrived, cancellationToken, this).ConfigureAwait(false);
            }
        }

        public async ValueTask AckAsync(BusMessage message, CancellationToken cancellationToken = default)
        {
            var id = IdOf(message);
            ThrowIfUnusable();
            await RunAsync(StreamScripts.Ack, [groupId, id, state.AcknowledgedChannel], cancellationToken).ConfigureAwait(false);
            lock (_held) _held.Remove(id);
        }

        public async ValueTask NackAsync(BusMessage message, CancellationToken cancellationToken = default)
        {
            var id = IdOf(message);
            ThrowIfUnusable();
            await RunAsync(StreamScripts.Nack, [groupId, consumerId, HandBackConsumer, id, state.NewEntryChannel], cancellationToken)
                .ConfigureAwait(false);
            lock (_held) _held.Remove(id);
        }

        /// <summary>Hands every unacknowledged entry back to the group and leaves it.</summary>
        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 1) return;
            await _closing.CancelAsync().ConfigureAwait(false);
            await _maintenance.ConfigureAwait(false);
            bus._live.TryRemove(new KeyValuePair<(string, string, string), Subscription>((Topic, groupId, consumerId), this));
            try
            {
                // One attempt: if the server is unreachable now, the entries go back after ClaimIdleAfter anyway.
                await Evaluate(StreamScripts.HandBackAll, HandBackArguments(deleteConsumer: true, keepHeld: false)).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e) || e is RedisServerException)
            {
                bus._options.Logger.LogWarning("Consumer {Consumer} of group {Group} on {Topic} could not hand back its entries ({Error}); " +
                    "they are redelivered after {ClaimIdleAfter}", consumerId, groupId, Topic, e.Message, bus._options.ClaimIdleAfter);
            }
            _closing.Dispose();
        }

        /// <summary>Every third of ClaimIdleAfter: renews the entries this consumer works on and hands back those of dead consumers.</summary>
        private async Task MaintainAsync()
        {
            var interval = bus._options.ClaimIdleAfter / 3;
            var idleMs = ((long)bus._options.ClaimIdleAfter.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
            while (true)
            {
                try
                {
                    await Task.Delay(interval, _closing.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                var arguments = new List<RedisValue> { groupId, consumerId, HandBackConsumer, idleMs, state.NewEntryChannel };
                lock (_held) arguments.AddRange(_held.Select(id => (RedisValue)id));
                try
                {
                    await RunAsync(StreamScripts.Maintain, arguments.ToArray(), _closing.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
                {
                    return;
                }
                catch (RedisServerException e)
                {
                    bus._options.Logger.LogWarning("Maintenance of consumer {Consumer} on {Topic} failed: {Error}", consumerId, Topic, e.Message);
                }
            }
        }

        /// <summary>Runs a script on the topic's stream (retrying through connection loss).</summary>
        private Task<RedisResult> RunAsync(string script, RedisValue[] arguments, CancellationToken cancellationToken) =>
            RunAsync(() => Evaluate(script, arguments), cancellationToken);

        /// <summary>
        /// Runs <paramref name="command"/>, retrying through connection loss; re-creates the group when the
        /// server lost it (a restart without persistence).
        /// </summary>
        private Task<RedisResult> RunAsync(Func<Task<RedisResult>> command, CancellationToken cancellationToken) =>
            bus.RetryAsync(async () =>
            {
                try
                {
                    return await command().ConfigureAwait(false);
                }
                catch (RedisServerException e) when (e.Message.Contains("NOGROUP", StringComparison.Ordinal))
                {
                    bus._options.Logger.LogWarning("Group {Group} of {Topic} is gone from the server (restarted without its data?); re-creating it", groupId, Topic);
                    bus.CreateGroup(state, groupId);
                    return await command().ConfigureAwait(false);
                }
            }, cancellationToken, this);

        private Task<RedisResult> Evaluate(string script, RedisValue[] arguments) => bus._db.ScriptEvaluateAsync(script, _keys, arguments);

        /// <summary>Arguments of <see cref="StreamScripts.HandBackAll"/> for this consumer.</summary>
        public RedisValue[] HandBackArguments(bool deleteConsumer, bool keepHeld)
        {
            var arguments = new List<RedisValue> { groupId, consumerId, HandBackConsumer, state.NewEntryChannel, deleteConsumer ? "1" : "0" };
            if (keepHeld)
                lock (_held) arguments.AddRange(_held.Select(id => (RedisValue)id));
            return arguments.ToArray();
        }

        private async Task GiveBackQuietlyAsync(string id)
        {
            try
            {
                await bus._db.ScriptEvaluateAsync(StreamScripts.Nack, _keys,
                    [groupId, consumerId, HandBackConsumer, id, state.NewEntryChannel]).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or ObjectDisposedException)
            {
                // The entry is redelivered after ClaimIdleAfter instead.
            }
        }

        private BusMessage ToMessage(RedisResult entry)
        {
            var parts = (RedisResult[])entry!;
            var id = (string)parts[0]!;
            var fields = (RedisResult[])parts[1]!;
            var key = "";
            byte[] payload = [];
            var headers = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i + 1 < fields.Length; i += 2)
            {
                var name = (string)fields[i]!;
                if (name == "key") key = (string)fields[i + 1]!;
                else if (name == "payload") payload = (byte[])fields[i + 1]!;
                else if (name.StartsWith(HeaderPrefix, StringComparison.Ordinal)) headers[name[HeaderPrefix.Length..]] = (string)fields[i + 1]!;
            }
            var milliseconds = long.Parse(id.AsSpan(0, id.IndexOf('-')), CultureInfo.InvariantCulture);
            return new BusMessage
            {
                Topic = Topic,
                Key = key,
                Payload = payload,
                Headers = headers.Count == 0 ? EmptyHeaders : headers,
                Id = id,
                DeliveryCount = (int)parts[2],
                Timestamp = DateTimeOffset.FromUnixTimeMilliseconds(milliseconds),
            };
        }

        private string IdOf(BusMessage message)
        {
            ArgumentNullException.ThrowIfNull(message);
            if (!string.Equals(message.Topic, Topic, StringComparison.Ordinal))
                throw new ArgumentException($"Message of topic '{message.Topic}' given to a subscription of topic '{Topic}'.", nameof(message));
            var dash = message.Id.IndexOf('-');
            if (dash <= 0 || !ulong.TryParse(message.Id.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out _) ||
                !ulong.TryParse(message.Id.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out _))
                throw new ArgumentException($"'{message.Id}' is not a Redis stream entry id.", nameof(message));
            return message.Id;
        }

        private void ThrowIfUnusable()
        {
            if (bus.IsDisposed || IsClosed) throw bus.Unusable(this);
        }
    }
}
