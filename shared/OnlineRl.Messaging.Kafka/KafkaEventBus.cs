using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OnlineRl.Messaging.Kafka;

/// <summary>
/// <see cref="IEventBus"/> over Apache Kafka (Confluent.Kafka / librdkafka). One idempotent producer
/// (acks=all) per bus; one Kafka consumer per subscription, in the Kafka consumer group of the same name.
/// </summary>
/// <remarks>
/// <para>Messages: the Kafka key is the given key (so one prompt's messages share a partition), Kafka headers
/// carry the bus headers (UTF-8), the id is "partition:offset".</para>
/// <para>Acknowledgement: each subscription stores, per partition, the offset after the longest run of
/// acknowledged messages (never past an unacknowledged one); librdkafka commits only stored offsets, in the
/// background, within about 150 ms of the ack (auto commit with enable.auto.offset.store off), and the
/// subscription commits synchronously when partitions are revoked or it is disposed. On a rebalance,
/// acknowledged work is committed and unacknowledged messages are forgotten, so the partition's new owner reads
/// them again (at least once).</para>
/// <para>Nack: the message goes to the back of the subscription's own queue (a local redelivery). Seeking back
/// instead would re-read every later message of the partition too; the offset stays uncommitted, so if this
/// consumer leaves first the group's next owner of the partition gets the message.</para>
/// <para>Delivery count: Kafka keeps none; the bus counts each hand-over of a message to a reader in its
/// <see cref="KafkaEventBusOptions.Deliveries"/> journal: by default in this process (nacks and handovers between
/// subscriptions of this bus raise it, a message that moves to another process starts again at 1), with a journal
/// shared by the run's processes (its ledger) across restarts.</para>
/// <para>Topics: created on first use with <see cref="KafkaEventBusOptions.TopicPartitions"/> partitions; a
/// broker without the CreateTopics call (e.g. <see cref="MockKafkaCluster"/>) auto-creates them instead.</para>
/// <para>Backpressure: <see cref="PublishAsync"/> waits while the producer's queue is full
/// (<c>queue.buffering.max.messages</c> / <c>queue.buffering.max.kbytes</c>) and completes when the brokers
/// have the message; a subscription takes no more messages while
/// <see cref="KafkaEventBusOptions.MaxBufferedMessagesPerSubscription"/> messages wait for its reader (pausing
/// fetching if the reader stays behind for more than a second).</para>
/// </remarks>
public sealed partial class KafkaEventBus : IEventBus
{
    /// <summary>How long the bus waits for a CreateTopics answer before relying on auto-creation.</summary>
    private static readonly TimeSpan CreateTopicTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How often librdkafka commits the offsets a subscription stored (its acknowledged prefix).</summary>
    internal static readonly TimeSpan CommitInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Failed TLS handshakes after which the brokers count as refusing this client's TLS settings.</summary>
    private const int RefusedTlsHandshakes = 3;

    /// <summary>How long a publisher waits before retrying when the producer queue is full.</summary>
    private static readonly TimeSpan QueueFullRetryDelay = TimeSpan.FromMilliseconds(5);

    private readonly KafkaEventBusOptions _options;
    private readonly ILogger _logger;
    private readonly IProducer<string, byte[]> _producer;
    private readonly IAdminClient _admin;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _topicsReady = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Topic, string Group, string Consumer), KafkaSubscription> _subscriptions = new();
    private readonly CancellationTokenSource _disposing = new();
    /// <summary>Faulted with a <see cref="TransportAuthenticationException"/> once the brokers refuse this client's credentials or TLS.</summary>
    private readonly TaskCompletionSource _refused = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;
    private int _failedTlsHandshakes;

    /// <summary>Creates the bus and its producer (connections open lazily).</summary>
    /// <param name="options">Brokers and client settings.</param>
    /// <param name="logger">Receives librdkafka's log lines and errors, topic creation and commit failures (default: none).</param>
    /// <exception cref="ArgumentException">An option is invalid, <see cref="KafkaEventBusOptions.Settings"/>
    /// names a reserved property, or librdkafka rejects a setting (the message names it).</exception>
    public KafkaEventBus(KafkaEventBusOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.BootstrapServers, nameof(options));
        ArgumentNullException.ThrowIfNull(options.Settings, nameof(options));
        if (options.TopicPartitions < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.TopicPartitions, "TopicPartitions must be at least 1.");
        if (options.MaxBufferedMessagesPerSubscription < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxBufferedMessagesPerSubscription,
                "MaxBufferedMessagesPerSubscription must be at least 1.");
        foreach (var key in options.Settings.Keys)
            if (KafkaEventBusOptions.ReservedSettings.Contains(key))
                throw new ArgumentException(
                    $"Kafka setting '{key}' is set by the bus itself (its delivery guarantees depend on it) and cannot be overridden.",
                    nameof(options));
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        Deliveries = options.Deliveries ?? new DeliveryCounter();

        var config = ClientConfig();
        config["enable.idempotence"] = "true";
        config["acks"] = "all";
        // PublishAsync reads only the error, partition and offset of a delivery report (always filled in);
        // the default ("all") also copies every message's headers and timestamp back from librdkafka.
        config["dotnet.producer.delivery.report.fields"] = "status";
        _producer = BuildClient(() => new ProducerBuilder<string, byte[]>(config)
            .SetLogHandler((_, log) => LogClient(log))
            .SetErrorHandler((_, error) => OnClientError("producer", error))
            .Build());
        _admin = new DependentAdminClientBuilder(_producer.Handle).Build();
    }

    /// <summary>The settings the bus was created with.</summary>
    public KafkaEventBusOptions Options => _options;

    /// <inheritdoc />
    /// <remarks>Completes when the brokers have stored the message (acks=all); the returned id is
    /// "partition:offset". The token cancels only the wait for queue space and topic creation: once a message
    /// is queued it is delivered or fails with a <see cref="ProduceException{TKey,TValue}"/>.</remarks>
    public async ValueTask<string> PublishAsync(string topic, string key, ReadOnlyMemory<byte> payload,
        IReadOnlyDictionary<string, string>? headers = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(key);
        ThrowIfDisposed();
        await EnsureTopicAsync(topic).WaitAsync(cancellationToken).ConfigureAwait(false);
        var message = new Message<string, byte[]> { Key = key, Value = payload.ToArray(), Headers = ToKafkaHeaders(headers) };
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ThrowIfDisposed();
            // Completed on librdkafka's delivery-report thread: continuations must not run there.
            var delivered = new TaskCompletionSource<DeliveryReport<string, byte[]>>(TaskCreationOptions.RunContinuationsAsynchronously);
            try
            {
                _producer.Produce(topic, message, report => delivered.TrySetResult(report));
            }
            catch (ProduceException<string, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                await Task.Delay(QueueFullRetryDelay, cancellationToken).ConfigureAwait(false);
                continue;
            }
            DeliveryReport<string, byte[]> report;
            try
            {
                // librdkafka retries a refused login for ever: the refusal ends the wait instead (see OnClientError).
                await Task.WhenAny(delivered.Task, _refused.Task).WaitAsync(_disposing.Token).ConfigureAwait(false);
                if (!delivered.Task.IsCompleted) await _refused.Task.ConfigureAwait(false);
                report = await delivered.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
            {
                throw new ObjectDisposedException(nameof(KafkaEventBus), "The Kafka event bus was disposed before the message was delivered.");
            }
            if (report.Error.IsError) throw new ProduceException<string, byte[]>(report.Error, report);
            return MessageId(report.Partition.Value, report.Offset.Value);
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">librdkafka rejects a consumer setting (the message names it).</exception>
    /// <exception cref="InvalidOperationException">This bus already has a consumer of that id in the group.</exception>
    public IEventSubscription Subscribe(string topic, string groupId, string consumerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(consumerId);
        ThrowIfDisposed();
        var config = ClientConfig();
        config["group.id"] = groupId;
        config["client.id"] = consumerId;
        // Background commits of only the offsets the subscription stores (the acknowledged prefix): no commit
        // round trip on the poll thread. Revokes and disposal still commit synchronously.
        config["enable.auto.commit"] = "true";
        config["enable.auto.offset.store"] = "false";
        config["auto.commit.interval.ms"] = CommitInterval.TotalMilliseconds.ToString(CultureInfo.InvariantCulture);
        config["auto.offset.reset"] = "earliest"; // a new group reads from the oldest retained message
        config["allow.auto.create.topics"] = "true"; // brokers without CreateTopics (see EnsureTopicAsync)
        var key = (topic, groupId, consumerId);
        var subscription = new KafkaSubscription(this, topic, groupId, consumerId, config);
        if (!_subscriptions.TryAdd(key, subscription))
            throw new InvalidOperationException($"Consumer '{consumerId}' is already subscribed to topic '{topic}' in group '{groupId}'.");
        try
        {
            subscription.Start();
        }
        catch
        {
            _subscriptions.TryRemove(key, out _);
            throw;
        }
        return subscription;
    }

    /// <summary>
    /// Ends the bus: disposes its subscriptions (committing acknowledged work), waits up to
    /// <see cref="KafkaEventBusOptions.FlushTimeout"/> for queued messages, then closes the producer.
    /// Publishes still waiting then fail with <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        foreach (var subscription in _subscriptions.Values) await subscription.DisposeAsync().ConfigureAwait(false);
        await Task.Run(() => _producer.Flush(_options.FlushTimeout)).ConfigureAwait(false);
        await _disposing.CancelAsync().ConfigureAwait(false);
        _admin.Dispose();
        _producer.Dispose();
        _disposing.Dispose();
    }

    internal ILogger Logger => _logger;

    /// <summary>Why the brokers refused this client (its credentials or TLS), or null.</summary>
    internal Exception? Refusal => _refused.Task.Exception?.InnerException;

    /// <summary>
    /// Logs a client's error. An authentication or TLS failure is not retried into a hang: every waiting and later
    /// publish and receive of the bus fails with a <see cref="TransportAuthenticationException"/> naming the brokers.
    /// </summary>
    internal void OnClientError(string client, Error error)
    {
        LogClientError(_logger, client, error.Code, error.Reason, error.IsFatal);
        var refused = error.Code is ErrorCode.Local_Authentication or ErrorCode.SaslAuthenticationFailed or ErrorCode.Local_Ssl
            or ErrorCode.UnsupportedSaslMechanism or ErrorCode.IllegalSaslState;
        // A TLS handshake cut off by the broker (librdkafka: "SSL handshake failed", often TLS to a plaintext listener)
        // is reported as a transport error, like a broker that is down; only its repetition marks a refusal.
        if (!refused && error.Code == ErrorCode.Local_Transport && error.Reason.Contains("SSL handshake failed", StringComparison.Ordinal))
            refused = Interlocked.Increment(ref _failedTlsHandshakes) >= RefusedTlsHandshakes;
        if (!refused) return;
        var settings = string.Join(", ", new[] { "security.protocol", "sasl.mechanism", "sasl.username" }
            .Where(_options.Settings.ContainsKey)
            .Select(key => key == "sasl.username" ? "sasl.username (set)" : $"{key}={_options.Settings[key]}"));
        var refusal = new TransportAuthenticationException(
            $"Kafka at {_options.BootstrapServers} refused the connection ({(settings.Length == 0 ? "no security settings" : settings)}): {error.Reason}");
        if (!_refused.TrySetException(refusal)) return;
        foreach (var subscription in _subscriptions.Values) subscription.Refused();
    }

    internal IDeliveryJournal Deliveries { get; }

    internal bool IsDisposed => Volatile.Read(ref _disposed) == 1;

    internal void Forget(KafkaSubscription subscription) =>
        _subscriptions.TryRemove(new KeyValuePair<(string, string, string), KafkaSubscription>(
            (subscription.Topic, subscription.GroupId, subscription.ConsumerId), subscription));

    internal static string MessageId(int partition, long offset) =>
        string.Create(CultureInfo.InvariantCulture, $"{partition}:{offset}");

    /// <summary>Creates the topic once per bus (later calls share the first attempt). Never fails: when the
    /// broker refuses or lacks CreateTopics, the broker's auto-creation (or an existing topic) is relied on.</summary>
    internal Task EnsureTopicAsync(string topic) =>
        _topicsReady.GetOrAdd(topic, name => new Lazy<Task>(() => CreateTopicAsync(name))).Value;

    private async Task CreateTopicAsync(string topic)
    {
        var specification = new TopicSpecification
        {
            Name = topic,
            NumPartitions = _options.TopicPartitions,
            ReplicationFactor = _options.TopicReplicationFactor,
        };
        try
        {
            await _admin.CreateTopicsAsync([specification], new CreateTopicsOptions { RequestTimeout = CreateTopicTimeout })
                .ConfigureAwait(false);
            LogTopicCreated(_logger, topic, _options.TopicPartitions);
        }
        catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code is ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
        {
            // Someone (another service, or an operator) created it first.
        }
        catch (KafkaException e)
        {
            LogTopicAutoCreation(_logger, topic, e.Error.Reason);
        }
    }

    /// <summary>The user's settings plus the brokers: the base of every client's configuration.</summary>
    private Dictionary<string, string> ClientConfig() =>
        new(_options.Settings, StringComparer.Ordinal) { ["bootstrap.servers"] = _options.BootstrapServers };

    /// <summary>Builds a Confluent client, turning librdkafka's refusal of a setting into an ArgumentException.</summary>
    internal static T BuildClient<T>(Func<T> build)
    {
        try
        {
            return build();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or KafkaException)
        {
            throw new ArgumentException($"Invalid Kafka client settings (transport.kafka): {e.Message}", e);
        }
    }

    internal void LogClient(LogMessage log)
    {
        var level = log.Level switch
        {
            SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical or SyslogLevel.Error => LogLevel.Error,
            SyslogLevel.Warning => LogLevel.Warning,
            SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
            _ => LogLevel.Debug,
        };
        // Settings go to every client, so each producer is told that consumer properties do not concern it (and the
        // other way round): expected, not worth a warning.
        if (log.Facility == "CONFWARN" && log.Message.Contains(" property and will be ignored by this ", StringComparison.Ordinal)) level = LogLevel.Debug;
        LogLibrdkafka(_logger, level, log.Name, log.Facility, log.Message);
    }

    private static Headers? ToKafkaHeaders(IReadOnlyDictionary<string, string>? headers)
    {
        if (headers is null || headers.Count == 0) return null;
        var kafkaHeaders = new Headers();
        foreach (var (name, value) in headers) kafkaHeaders.Add(name, Encoding.UTF8.GetBytes(value));
        return kafkaHeaders;
    }

    private void ThrowIfDisposed()
    {
        if (IsDisposed) throw new ObjectDisposedException(nameof(KafkaEventBus), "The Kafka event bus has been disposed.");
        if (Refusal is { } refusal) throw refusal;
    }

    [LoggerMessage(Message = "librdkafka {Client} {Facility}: {Text}")]
    private static partial void LogLibrdkafka(ILogger logger, LogLevel level, string client, string facility, string text);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kafka {Client} error {Code} (fatal: {Fatal}): {Reason}")]
    internal static partial void LogClientError(ILogger logger, string client, ErrorCode code, string reason, bool fatal);

    [LoggerMessage(Level = LogLevel.Information, Message = "Created Kafka topic {Topic} with {Partitions} partitions")]
    private static partial void LogTopicCreated(ILogger logger, string topic, int partitions);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Kafka topic {Topic} not created by the bus ({Reason}); relying on an existing topic or the broker's auto-creation")]
    private static partial void LogTopicAutoCreation(ILogger logger, string topic, string reason);
}
