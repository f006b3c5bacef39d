namespace OnlineRl.Messaging;

/// <summary>A message as delivered by an <see cref="IEventSubscription"/>.</summary>
public sealed record BusMessage
{
    /// <summary>The topic it was read from.</summary>
    public required string Topic { get; init; }

    /// <summary>The key it was published with.</summary>
    public required string Key { get; init; }

    /// <summary>The payload bytes (do not modify).</summary>
    public required ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>The headers it was published with (empty when none).</summary>
    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    /// <summary>
    /// The transport's position of the message in the topic, stable across redeliveries: the log sequence
    /// number in-process, "partition:offset" on Kafka, the entry id on Redis Streams.
    /// </summary>
    public required string Id { get; init; }

    /// <summary>How many times the message has been delivered to this consumer group (1 on first delivery).</summary>
    public required int DeliveryCount { get; init; }

    /// <summary>When the bus accepted the message.</summary>
    public required DateTimeOffset Timestamp { get; init; }
}
