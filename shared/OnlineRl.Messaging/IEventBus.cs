namespace OnlineRl.Messaging;

/// <summary>
/// A topic-based message bus with Kafka consumer-group semantics. Implemented in-process
/// (<see cref="InProcessEventBus"/>) and by the broker transports (Redis Streams, Kafka).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Each topic is a retained, ordered log. A consumer group reads it from the earliest retained
/// message, so messages published before a group first subscribes are still delivered to it.</item>
/// <item>Every consumer group receives every message of the topic at least once; different groups are
/// independent; the consumers of one group share the work (each message goes to one of them).</item>
/// <item>A message is done for a group only when acknowledged (<see cref="IEventSubscription.AckAsync"/>).
/// Nacked messages and the unacknowledged messages of a disposed consumer are redelivered to the group
/// with a higher <see cref="BusMessage.DeliveryCount"/>. Handlers must therefore be idempotent.</item>
/// <item>Order: a group sees messages in publish order, except that redeliveries come again later.</item>
/// </list>
/// </remarks>
public interface IEventBus : IAsyncDisposable
{
    /// <summary>
    /// Appends a message to a topic. May wait (backpressure) while the topic is full; completes once the
    /// transport has accepted the message.
    /// </summary>
    /// <param name="topic">The topic name (see <c>OnlineRl.Contracts.Topics</c>).</param>
    /// <param name="key">The message key (partitioning key on Kafka; e.g. the prompt id).</param>
    /// <param name="payload">The payload; the bus copies it before returning, the caller may reuse the buffer.</param>
    /// <param name="headers">Transport headers (see <see cref="MessageHeaders"/>), or null.</param>
    /// <param name="cancellationToken">Cancels the wait for space.</param>
    /// <returns>The id the transport gave the message (<see cref="BusMessage.Id"/>).</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled before the message was accepted.</exception>
    /// <exception cref="ObjectDisposedException">The bus is disposed.</exception>
    ValueTask<string> PublishAsync(string topic, string key, ReadOnlyMemory<byte> payload,
        IReadOnlyDictionary<string, string>? headers = null, CancellationToken cancellationToken = default);

    /// <summary>Joins a consumer group of a topic as one consumer. Dispose the subscription to leave.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="groupId">The consumer group (e.g. "scorer"): every group receives every message.</param>
    /// <param name="consumerId">This consumer's id, unique among the group's live consumers (e.g. "scorer-0").</param>
    /// <exception cref="ObjectDisposedException">The bus is disposed.</exception>
    IEventSubscription Subscribe(string topic, string groupId, string consumerId);
}

/// <summary>One consumer of a consumer group on one topic.</summary>
public interface IEventSubscription : IAsyncDisposable
{
    /// <summary>The topic.</summary>
    string Topic { get; }

    /// <summary>The consumer group.</summary>
    string GroupId { get; }

    /// <summary>This consumer's id.</summary>
    string ConsumerId { get; }

    /// <summary>Waits for the next message for this consumer (a new one or a redelivery).</summary>
    /// <param name="cancellationToken">Cancels the wait; no message is lost by cancelling.</param>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The subscription or the bus is disposed (also ends a pending wait).</exception>
    ValueTask<BusMessage> ReceiveAsync(CancellationToken cancellationToken = default);

    /// <summary>Marks a received message as processed for the group. Acknowledging twice is harmless.</summary>
    /// <param name="message">A message received from this subscription.</param>
    /// <param name="cancellationToken">Cancels the call (broker transports).</param>
    ValueTask AckAsync(BusMessage message, CancellationToken cancellationToken = default);

    /// <summary>Gives a received message back for redelivery to the group (this or another consumer).</summary>
    /// <param name="message">A message received from this subscription and not yet acknowledged.</param>
    /// <param name="cancellationToken">Cancels the call (broker transports).</param>
    ValueTask NackAsync(BusMessage message, CancellationToken cancellationToken = default);
}
