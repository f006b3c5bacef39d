using Microsoft.Extensions.Logging;
using OnlineRl.Messaging;
using OnlineRl.Messaging.Kafka;
using OnlineRl.Redis;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>
/// Maps the transport URIs of a configuration (<c>transport.bus</c>, <c>transport.weights</c>) to an event
/// bus and a blob store for weights.
/// </summary>
public static class Transports
{
    /// <summary>The in-process bus: the services of one process only.</summary>
    public const string InProcess = "inproc";
    /// <summary>Weights kept in this process's memory.</summary>
    public const string Memory = "memory";

    /// <summary>Whether <paramref name="uri"/> is inproc, a Redis address (<see cref="RedisConnection"/>) or kafka://HOST:PORT[,HOST:PORT...].</summary>
    public static bool IsBusUri(string uri) =>
        uri == InProcess || IsRedisUri(uri) || (uri.StartsWith("kafka://", StringComparison.Ordinal) && uri["kafka://".Length..].Split(',').All(IsHostPort));

    /// <summary>Whether <paramref name="uri"/> is memory or a Redis address.</summary>
    public static bool IsWeightsUri(string uri) => uri == Memory || IsRedisUri(uri);

    /// <summary>A transport URI as logs, errors and reports may show it: a Redis password replaced by ***.</summary>
    public static string Describe(string uri) => IsRedisScheme(uri) ? RedisConnection.Describe(uri) : uri;

    /// <summary>Whether <paramref name="uri"/> names a bus or store shared by separate processes.</summary>
    public static bool IsShared(string uri) => uri != InProcess && uri != Memory;

    /// <summary>The event bus named by <c>transport.bus</c>.</summary>
    /// <param name="transport">The transport settings.</param>
    /// <param name="deliveries">Kafka only: where deliveries are counted (null: in this process; see
    /// <see cref="LedgerDeliveryJournal"/> for counts that survive restarts).</param>
    /// <param name="logs">Where the transport reports connection problems, broker errors and rebalances (null: nowhere).</param>
    /// <exception cref="ConfigException">The URI is invalid or its transport is not built in.</exception>
    /// <exception cref="TransportAuthenticationException">Redis refused the credentials or certificates.</exception>
    public static IEventBus CreateBus(TransportSection transport, IDeliveryJournal? deliveries = null, ILoggerFactory? logs = null)
    {
        if (transport.Bus == InProcess) return new InProcessEventBus();
        if (!IsBusUri(transport.Bus)) throw new ConfigException($"config key 'transport.bus': '{Describe(transport.Bus)}' is not inproc, redis[s]://[[USER]:PASSWORD@]HOST:PORT or kafka://HOST:PORT[,HOST:PORT...]");
        if (transport.Bus.StartsWith("kafka://", StringComparison.Ordinal))
        {
            try
            {
                return new KafkaEventBus(KafkaEventBusOptions.FromUri(transport.Bus, transport.Kafka) with { Deliveries = deliveries },
                    logs?.CreateLogger("OnlineRl.Kafka"));
            }
            catch (ArgumentException e)
            {
                throw new ConfigException($"config key 'transport.kafka': {e.Message}");
            }
        }
        var options = new RedisEventBusOptions { Address = transport.Bus, Tls = RedisTls(transport) };
        return new RedisEventBus(logs is null ? options : options with { Logger = logs.CreateLogger("OnlineRl.Redis") });
    }

    /// <summary>The blob store for weights named by <c>transport.weights</c>.</summary>
    /// <param name="transport">The transport settings.</param>
    /// <param name="logs">Where the store reports retries while Redis is unreachable (null: nowhere).</param>
    /// <exception cref="ConfigException">The URI is invalid or its store is not built in.</exception>
    /// <exception cref="TransportAuthenticationException">Redis refused the credentials or certificates.</exception>
    public static IBlobStore CreateBlobStore(TransportSection transport, ILoggerFactory? logs = null)
    {
        if (transport.Weights == Memory) return new InMemoryBlobStore();
        if (!IsWeightsUri(transport.Weights)) throw new ConfigException($"config key 'transport.weights': '{Describe(transport.Weights)}' is not memory or redis[s]://[[USER]:PASSWORD@]HOST:PORT");
        return new RedisBlobStore(Connection(transport).GetDatabase(), logger: logs?.CreateLogger("OnlineRl.Weights"));
    }

    /// <summary>
    /// Where generators report the weights they hold and the learner reads what it may not prune: in Redis
    /// (with a time-to-live) when weights travel through Redis, else in this process.
    /// </summary>
    public static IGeneratorStatusReporter CreateGeneratorStatus(TransportSection transport, string weightsPrefix) =>
        IsRedisUri(transport.Weights)
            ? new RedisGeneratorStatus(new GeneratorRegistry(Connection(transport).GetDatabase(), weightsPrefix))
            : new InProcessGeneratorStatus();

    // One connection per server and process: StackExchange.Redis multiplexes everything over it.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<StackExchange.Redis.ConnectionMultiplexer>> Connections = new();

    /// <summary>The connection to the weights' Redis (its certificates are the process's configuration, so the address is the key).</summary>
    private static StackExchange.Redis.ConnectionMultiplexer Connection(TransportSection transport) =>
        Connections.GetOrAdd(transport.Weights, address => new Lazy<StackExchange.Redis.ConnectionMultiplexer>(() => RedisConnection.Connect(address, RedisTls(transport)))).Value;

    private static RedisTls RedisTls(TransportSection transport) =>
        new(transport.RedisCaFile, transport.RedisClientCertFile, transport.RedisClientKeyFile);

    private static bool IsRedisScheme(string uri) =>
        uri.StartsWith(RedisConnection.Scheme, StringComparison.Ordinal) || uri.StartsWith(RedisConnection.TlsScheme, StringComparison.Ordinal);

    private static bool IsRedisUri(string uri) => IsRedisScheme(uri) && RedisConnection.IsAddress(uri);

    private static bool IsHostPort(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon > 0 && int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
               && port is > 0 and <= 65535 && !text[..colon].Any(char.IsWhiteSpace);
    }
}
