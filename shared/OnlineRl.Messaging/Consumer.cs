using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnlineRl.Contracts;

namespace OnlineRl.Messaging;

/// <summary>Settings of a <see cref="Consumer{T}"/>.</summary>
public sealed record ConsumerOptions
{
    /// <summary>This service instance, written into dead letters (default: the machine name).</summary>
    public string ServiceId { get; init; } = Environment.MachineName;

    /// <summary>The pipeline stage written into dead letters, e.g. "scorer" (default: the group id).</summary>
    public string? Stage { get; init; }

    /// <summary>Run id for dead letters whose original message names none.</summary>
    public string RunId { get; init; } = "unknown";

    /// <summary>
    /// How many deliveries a message gets: after the handler fails on the last one, or when a message
    /// arrives more often than this (the process died while handling it), it is dead-lettered. Default 5.
    /// </summary>
    public int MaxDeliveryAttempts { get; init; } = 5;

    /// <summary>Where rejected messages go (default <see cref="Topics.DeadLetter"/>).</summary>
    public string DeadLetterTopic { get; init; } = Topics.DeadLetter;

    /// <summary>The codec (default: <see cref="MessageCodec.Default"/>).</summary>
    public MessageCodec? Codec { get; init; }
}

/// <summary>What <c>Consumer.ProcessAsync</c> did with a message.</summary>
public enum ConsumeOutcome
{
    /// <summary>The handler succeeded; the message was acknowledged.</summary>
    Handled,

    /// <summary>The message was published to the dead-letter topic and acknowledged.</summary>
    DeadLettered,

    /// <summary>The handler failed; the message was given back for redelivery.</summary>
    Retried,
    /// <summary>The handler kept the message: it acknowledges it itself later (e.g. after a training step).</summary>
    Kept,
}

/// <summary>
/// The consume loop of a service: receives from a consumer group, decodes each payload with
/// <see cref="MessageCodec"/>, runs the handler and acknowledges. A message that cannot be decoded (or whose
/// handler keeps failing) is published to the dead-letter topic with the reason and its original bytes, then
/// acknowledged: a bad message never stops the service and is never lost.
/// </summary>
/// <typeparam name="T">The message type of the topic.</typeparam>
public sealed partial class Consumer<T> where T : class, IMessage<T>, IContractMessage, new()
{
    private static readonly string ExpectedType = new T().Descriptor.FullName;

    private readonly IEventBus _bus;
    private readonly ConsumerOptions _options;
    private readonly MessageCodec _codec;
    private readonly Publisher _deadLetters;
    private readonly MessagingMetrics _metrics;
    private readonly ILogger _logger;

    /// <summary>Creates a consumer (it subscribes when <see cref="RunAsync"/> starts).</summary>
    /// <param name="bus">The bus.</param>
    /// <param name="topic">The topic to read.</param>
    /// <param name="groupId">The consumer group.</param>
    /// <param name="consumerId">This consumer's id within the group.</param>
    /// <param name="options">Settings (default: <see cref="ConsumerOptions"/> defaults).</param>
    /// <param name="metrics">The counters (default: <see cref="MessagingMetrics.Shared"/>).</param>
    /// <param name="logger">Logs dead letters and handler failures (default: none).</param>
    public Consumer(IEventBus bus, string topic, string groupId, string consumerId,
        ConsumerOptions? options = null, MessagingMetrics? metrics = null, ILogger? logger = null)
    {
        _bus = bus ?? throw new ArgumentNullException(nameof(bus));
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(consumerId);
        _options = options ?? new ConsumerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxDeliveryAttempts, 1, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(_options.DeadLetterTopic, nameof(options));
        Topic = topic;
        GroupId = groupId;
        ConsumerId = consumerId;
        _codec = _options.Codec ?? MessageCodec.Default;
        _metrics = metrics ?? MessagingMetrics.Shared;
        _deadLetters = new Publisher(bus, _codec, _metrics);
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The topic.</summary>
    public string Topic { get; }

    /// <summary>The consumer group.</summary>
    public string GroupId { get; }

    /// <summary>This consumer's id.</summary>
    public string ConsumerId { get; }

    /// <summary>
    /// Subscribes and processes messages one at a time until cancelled (then throws
    /// <see cref="OperationCanceledException"/>); leaving unsubscribes, so unacknowledged messages go to the
    /// group's other consumers.
    /// </summary>
    /// <param name="handler">Handles one decoded message; must be idempotent (delivery is at least once).
    /// Throwing gives the message back for redelivery, up to <see cref="ConsumerOptions.MaxDeliveryAttempts"/>.</param>
    /// <param name="cancellationToken">Stops the loop.</param>
    public async Task RunAsync(Func<T, BusMessage, CancellationToken, ValueTask> handler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = _bus.Subscribe(Topic, GroupId, ConsumerId);
        await using (subscription.ConfigureAwait(false))
        {
            while (true)
            {
                var message = await subscription.ReceiveAsync(cancellationToken).ConfigureAwait(false);
                await ProcessAsync(subscription, message, handler, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Processes one received message: dead-letters it if it cannot be decoded, otherwise runs the handler,
    /// then acknowledges it (or gives it back when the handler failed and attempts remain). For custom loops.
    /// </summary>
    /// <param name="subscription">The subscription the message came from.</param>
    /// <param name="message">The message.</param>
    /// <param name="handler">The handler.</param>
    /// <param name="cancellationToken">Cancels processing; a cancelled message is given back, not lost.</param>
    public Task<ConsumeOutcome> ProcessAsync(IEventSubscription subscription, BusMessage message,
        Func<T, BusMessage, CancellationToken, ValueTask> handler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return ProcessDeferredAsync(subscription, message, async (value, raw, ct) =>
        {
            await handler(value, raw, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// Like <see cref="ProcessAsync"/>, but the handler decides when the message is acknowledged: returning true
    /// acknowledges it now; false means the handler keeps it and acknowledges it on the subscription itself
    /// once its work is durable (the learner acknowledges scored groups only after the step that used them).
    /// </summary>
    /// <param name="subscription">The subscription the message came from.</param>
    /// <param name="message">The message.</param>
    /// <param name="handler">The handler; returns whether to acknowledge now.</param>
    /// <param name="cancellationToken">Cancels processing; a cancelled message is given back, not lost.</param>
    public async Task<ConsumeOutcome> ProcessDeferredAsync(IEventSubscription subscription, BusMessage message,
        Func<T, BusMessage, CancellationToken, ValueTask<bool>> handler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(handler);

        if (message.DeliveryCount > _options.MaxDeliveryAttempts)
            return await DeadLetterAsync(subscription, message, null, DeadLetterReasons.TooManyDeliveries,
                $"delivery_count: delivered {message.DeliveryCount} times, more than the limit of {_options.MaxDeliveryAttempts}",
                cancellationToken).ConfigureAwait(false);

        if (message.Headers.TryGetValue(MessageHeaders.MessageType, out var type) && type != ExpectedType)
            return await DeadLetterAsync(subscription, message, null, DeadLetterReasons.WrongMessageType,
                $"{MessageHeaders.MessageType}: expected {ExpectedType}, got {type}", cancellationToken).ConfigureAwait(false);

        var decoded = _codec.Decode<T>(message.Payload.Span);
        if (!decoded.Ok)
            return await DeadLetterAsync(subscription, message, null, DeadLetterReasons.Of(decoded.ErrorKind), decoded.Error,
                cancellationToken).ConfigureAwait(false);

        bool acknowledgeNow;
        try
        {
            acknowledgeNow = await handler(decoded.Value, message, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await subscription.NackAsync(message, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        catch (Exception ex)
        {
            _metrics.HandlerFailed(Topic, GroupId);
            LogHandlerFailed(_logger, ex, Topic, GroupId, message.Id, message.DeliveryCount, _options.MaxDeliveryAttempts);
            if (message.DeliveryCount < _options.MaxDeliveryAttempts)
            {
                await subscription.NackAsync(message, CancellationToken.None).ConfigureAwait(false);
                return ConsumeOutcome.Retried;
            }
            return await DeadLetterAsync(subscription, message, decoded.Value, DeadLetterReasons.HandlerFailed,
                $"handler: {ex.GetType().Name}: {ex.Message} (failed on delivery {message.DeliveryCount} of {_options.MaxDeliveryAttempts})",
                cancellationToken).ConfigureAwait(false);
        }

        _metrics.Consumed(Topic, GroupId);
        if (!acknowledgeNow) return ConsumeOutcome.Kept;
        await subscription.AckAsync(message, CancellationToken.None).ConfigureAwait(false);
        return ConsumeOutcome.Handled;
    }

    private async Task<ConsumeOutcome> DeadLetterAsync(IEventSubscription subscription, BusMessage message, T? decoded,
        string reasonTag, string reason, CancellationToken cancellationToken)
    {
        var payload = message.Payload;
        // The dead letter must itself fit the codec's limit: an oversized original is cut, and the reason says so.
        var room = _codec.Options.MaxPayloadBytes - Math.Min(64 * 1024, _codec.Options.MaxPayloadBytes / 2);
        if (payload.Length > room)
        {
            reason += $" (dead-letter payload cut to the first {room} of {payload.Length} bytes)";
            payload = payload[..room];
        }
        var runId = message.Headers.TryGetValue(MessageHeaders.RunId, out var r) && !string.IsNullOrWhiteSpace(r) ? r
            : decoded is not null ? decoded.RunId
            : _options.RunId;
        var letter = new DeadLetter
        {
            OriginalTopic = message.Topic,
            Key = message.Key,
            Payload = ByteString.CopyFrom(payload.Span),
            Reason = reason,
            ServiceId = _options.ServiceId,
            Stage = _options.Stage ?? GroupId,
            OriginalId = message.Id,
            DeliveryCount = message.DeliveryCount,
        };
        foreach (var (name, value) in message.Headers) letter.OriginalHeaders[name] = value;
        letter.Stamp(string.IsNullOrWhiteSpace(runId) ? "unknown" : runId);

        // Publish first, acknowledge second: if publishing fails the message stays unacknowledged and comes back.
        await _deadLetters.PublishAsync(_options.DeadLetterTopic, letter, message.Key, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        await subscription.AckAsync(message, CancellationToken.None).ConfigureAwait(false);
        _metrics.DeadLettered(Topic, reasonTag);
        LogDeadLettered(_logger, Topic, GroupId, message.Id, reason);
        return ConsumeOutcome.DeadLettered;
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Dead-lettered message {MessageId} of topic {Topic} (group {Group}): {Reason}")]
    private static partial void LogDeadLettered(ILogger logger, string topic, string group, string messageId, string reason);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Handler failed on message {MessageId} of topic {Topic} (group {Group}), delivery {Delivery} of {MaxDeliveries}")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string topic, string group,
        string messageId, int delivery, int maxDeliveries);
}
