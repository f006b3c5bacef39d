namespace OnlineRl.Messaging;

/// <summary>
/// Counts how often each Kafka message was handed to a reader of a consumer group: the
/// <see cref="BusMessage.DeliveryCount"/> of the Kafka transport, which Kafka itself does not keep. The default
/// counts in this process only; a journal shared by every process of a run (the run's ledger, see
/// OnlineRl.Pipeline's LedgerDeliveryJournal) keeps counting across restarts, so that a message that kills its
/// consumer every time is still dead-lettered after <c>ConsumerOptions.MaxDeliveryAttempts</c>.
/// </summary>
/// <remarks>Called from receive and acknowledge calls of any thread; implementations are thread-safe. It lives beside
/// the bus abstraction, not in the Kafka transport, so that the pipeline keeps such a journal without referencing
/// Kafka (OnlineRl.Messaging.Kafka's <c>KafkaEventBusOptions.Deliveries</c> takes it).</remarks>
public interface IDeliveryJournal
{
    /// <summary>
    /// Records that message (<paramref name="partition"/>, <paramref name="offset"/>) of <paramref name="topic"/> is
    /// handed to a reader of <paramref name="group"/> now; returns its delivery count, this one included (1 the first time).
    /// </summary>
    /// <param name="group">The consumer group.</param>
    /// <param name="topic">The topic.</param>
    /// <param name="partition">The partition.</param>
    /// <param name="offset">The message's offset.</param>
    /// <param name="key">The message key (e.g. the prompt id), for people reading the journal.</param>
    int Record(string group, string topic, int partition, long offset, string key);

    /// <summary>The group acknowledged the message: a journal may forget it.</summary>
    void Acknowledged(string group, string topic, int partition, long offset);
}
