namespace OnlineRl.Messaging.Kafka;

/// <summary>Settings of a <see cref="KafkaEventBus"/>.</summary>
public sealed record KafkaEventBusOptions
{
    /// <summary>
    /// The librdkafka properties the bus sets itself; <see cref="Settings"/> may not change them because the
    /// bus's delivery guarantees depend on them.
    /// </summary>
    public static readonly IReadOnlySet<string> ReservedSettings = new HashSet<string>(StringComparer.Ordinal)
    {
        "bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store", "enable.idempotence",
        "acks", "request.required.acks", "auto.offset.reset", "allow.auto.create.topics",
    };

    /// <summary>The brokers, "HOST:PORT[,HOST:PORT...]" (a <c>kafka://</c> transport URI without its scheme).</summary>
    public required string BootstrapServers { get; init; }

    /// <summary>
    /// Further librdkafka properties for every producer, consumer and admin client of the bus (config map
    /// <c>transport.kafka</c>): security (<c>security.protocol</c>, <c>sasl.mechanism</c>, <c>sasl.username</c>,
    /// <c>sasl.password</c>, <c>ssl.ca.location</c>, ...) and tuning (<c>linger.ms</c>,
    /// <c>session.timeout.ms</c>, <c>heartbeat.interval.ms</c>, ...). Not the <see cref="ReservedSettings"/>.
    /// </summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>Partitions of a topic the bus creates (default 4). Consumers of one group share work per partition,
    /// so this bounds how many of them are busy at once.</summary>
    public int TopicPartitions { get; init; } = 4;

    /// <summary>Replicas of a topic the bus creates; -1 (default) takes the broker's default.</summary>
    public short TopicReplicationFactor { get; init; } = -1;

    /// <summary>How many received-but-unhandled messages one subscription buffers before it stops taking more
    /// (default 1,024). A full buffer first waits up to a second for the reader to take it down to half; only a
    /// reader that stays behind longer makes the subscription pause fetching, which drops librdkafka's
    /// prefetched messages (they are fetched again after the resume).</summary>
    public int MaxBufferedMessagesPerSubscription { get; init; } = 1024;

    /// <summary>
    /// Where deliveries are counted (<see cref="BusMessage.DeliveryCount"/>); null (default): in this process only,
    /// so a message that moves to another process starts again at 1. Give a journal every process shares (the run's
    /// ledger) to keep counting across restarts.
    /// </summary>
    public IDeliveryJournal? Deliveries { get; init; }

    /// <summary>How long disposing the bus waits for queued messages to reach the brokers (default 10 s).</summary>
    public TimeSpan FlushTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Parses a transport URI <c>kafka://HOST:PORT[,HOST:PORT...]</c> into options.
    /// </summary>
    /// <param name="uri">The value of config key <c>transport.bus</c>.</param>
    /// <param name="settings">The config map <c>transport.kafka</c>, or null.</param>
    /// <exception cref="ArgumentException">The URI is not a kafka:// URI with at least one HOST:PORT.</exception>
    public static KafkaEventBusOptions FromUri(string uri, IReadOnlyDictionary<string, string>? settings = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        const string scheme = "kafka://";
        if (!uri.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"transport.bus '{uri}' is not a kafka://HOST:PORT[,HOST:PORT...] URI.", nameof(uri));
        var servers = uri[scheme.Length..].TrimEnd('/');
        foreach (var server in servers.Split(','))
        {
            var colon = server.LastIndexOf(':');
            if (colon <= 0 || !ushort.TryParse(server[(colon + 1)..], out var port) || port == 0)
                throw new ArgumentException($"transport.bus '{uri}': '{server}' is not HOST:PORT.", nameof(uri));
        }
        return new KafkaEventBusOptions { BootstrapServers = servers, Settings = settings ?? new Dictionary<string, string>() };
    }
}
