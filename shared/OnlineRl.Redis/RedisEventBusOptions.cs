using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnlineRl.Messaging;

namespace OnlineRl.Redis;

/// <summary>Settings of a <see cref="RedisEventBus"/>.</summary>
public sealed record RedisEventBusOptions
{
    /// <summary>The server, <c>redis://[[USER]:PASSWORD@]HOST:PORT</c> or <c>rediss://...</c> for TLS (the
    /// <c>transport.bus</c> config value; see <see cref="RedisAddress"/>).</summary>
    public required string Address { get; init; }

    /// <summary>Certificates for a <c>rediss://</c> address (null: the system's trust store, no client certificate).</summary>
    public RedisTls? Tls { get; init; }

    /// <summary>Prefix of every key and channel the bus uses; runs sharing a server need different prefixes.</summary>
    public string KeyPrefix { get; init; } = "onlinerl";

    /// <summary>
    /// How many unfinished entries (not yet acknowledged by every consumer group) a topic holds before
    /// <see cref="IEventBus.PublishAsync"/> waits, unless <see cref="TopicCapacities"/> names the topic.
    /// </summary>
    public int DefaultCapacity { get; init; } = InProcessEventBusOptions.DefaultTopicCapacity;

    /// <summary>Capacity per topic name, overriding <see cref="DefaultCapacity"/>.</summary>
    public IReadOnlyDictionary<string, int> TopicCapacities { get; init; } = new Dictionary<string, int>();

    /// <summary>
    /// An entry a consumer has held this long without any sign of life goes back to its group (the consumer
    /// is presumed dead). Live consumers renew their entries every third of this, however long they work.
    /// </summary>
    public TimeSpan ClaimIdleAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Longest wait between checks of a topic when no notification arrives (notifications can be lost while
    /// the connection is down).
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Where connection problems and recoveries are reported.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>The capacity of <paramref name="topic"/>.</summary>
    public int CapacityOf(string topic) => TopicCapacities.TryGetValue(topic, out var capacity) ? capacity : DefaultCapacity;

    internal void Validate()
    {
        RedisConnection.Options(Address, Tls); // throws a FormatException naming a bad address (never its password)
        ArgumentException.ThrowIfNullOrEmpty(KeyPrefix, nameof(KeyPrefix));
        ArgumentNullException.ThrowIfNull(TopicCapacities, nameof(TopicCapacities));
        ArgumentNullException.ThrowIfNull(Logger, nameof(Logger));
        if (DefaultCapacity < 1)
            throw new ArgumentOutOfRangeException(nameof(DefaultCapacity), DefaultCapacity, "DefaultCapacity must be at least 1.");
        foreach (var (topic, capacity) in TopicCapacities)
            if (capacity < 1)
                throw new ArgumentOutOfRangeException(nameof(TopicCapacities), capacity, $"Capacity of topic '{topic}' must be at least 1.");
        if (ClaimIdleAfter < TimeSpan.FromMilliseconds(30))
            throw new ArgumentOutOfRangeException(nameof(ClaimIdleAfter), ClaimIdleAfter, "ClaimIdleAfter must be at least 30 ms.");
        if (PollInterval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "PollInterval must be positive.");
    }
}
