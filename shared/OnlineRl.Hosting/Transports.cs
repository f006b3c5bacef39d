using Microsoft.Extensions.Logging;
using OnlineRl.Messaging;
using OnlineRl.Messaging.Kafka;
using OnlineRl.Pipeline;
using OnlineRl.Redis;
using OnlineRl.Weights;

namespace OnlineRl.Hosting;

/// <summary>
/// Maps the transport URIs of a configuration (<c>transport.bus</c>, <c>transport.weights</c>) to an event
/// bus and a blob store for weights: Redis and Kafka here, inproc and memory through <see cref="InProcessTransports"/>.
/// </summary>
/// <param name="logs">Where the transports report connection problems, broker errors, rebalances and the weight
/// store's retries while Redis is unreachable (null: nowhere).</param>
public sealed class Transports(ILoggerFactory? logs = null) : ITransportFactory
{
    /// <inheritdoc />
    /// <exception cref="TransportAuthenticationException">Redis refused the credentials or certificates.</exception>
    public IEventBus CreateBus(TransportSection transport) => CreateBus(transport, deliveries: null);

    /// <summary>The event bus named by <c>transport.bus</c>.</summary>
    /// <param name="transport">The transport settings.</param>
    /// <param name="deliveries">Kafka only: where deliveries are counted (null: in this process; see
    /// <see cref="LedgerDeliveryJournal"/> for counts that survive restarts).</param>
    /// <exception cref="ConfigException">The URI is invalid or its transport is not built in.</exception>
    /// <exception cref="TransportAuthenticationException">Redis refused the credentials or certificates.</exception>
    public IEventBus CreateBus(TransportSection transport, IDeliveryJournal? deliveries)
    {
        if (transport.Bus == TransportUris.InProcess) return InProcessTransports.Instance.CreateBus(transport);
        if (!TransportUris.IsBusUri(transport.Bus)) throw new ConfigException($"config key 'transport.bus': '{TransportUris.Describe(transport.Bus)}' is not inproc, redis[s]://[[USER]:PASSWORD@]HOST:PORT or kafka://HOST:PORT[,HOST:PORT...]");
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

    /// <inheritdoc />
    /// <exception cref="TransportAuthenticationException">Redis refused the credentials or certificates.</exception>
    public IBlobStore CreateBlobStore(TransportSection transport)
    {
        if (transport.Weights == TransportUris.Memory) return InProcessTransports.Instance.CreateBlobStore(transport);
        if (!TransportUris.IsWeightsUri(transport.Weights)) throw new ConfigException($"config key 'transport.weights': '{TransportUris.Describe(transport.Weights)}' is not memory or redis[s]://[[USER]:PASSWORD@]HOST:PORT");
        return new RedisBlobStore(Connection(transport).GetDatabase(), logger: logs?.CreateLogger("OnlineRl.Weights"));
    }

    /// <summary>
    /// Where generators report the weights they hold and the learner reads what it may not prune: in Redis
    /// (with a time-to-live) when weights travel through Redis, else in this process.
    /// </summary>
    /// <param name="transport">The transport settings.</param>
    /// <param name="weightsPrefix">The key prefix of the run's weights.</param>
    public IGeneratorStatusReporter CreateGeneratorStatus(TransportSection transport, string weightsPrefix) =>
        TransportUris.IsRedisUri(transport.Weights)
            ? new RedisGeneratorStatus(new GeneratorRegistry(Connection(transport).GetDatabase(), weightsPrefix))
            : InProcessTransports.Instance.CreateGeneratorStatus(transport, weightsPrefix);

    // One connection per server and process: StackExchange.Redis multiplexes everything over it.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<StackExchange.Redis.ConnectionMultiplexer>> Connections = new();

    /// <summary>The connection to the weights' Redis (its certificates are the process's configuration, so the address is the key).</summary>
    private static StackExchange.Redis.ConnectionMultiplexer Connection(TransportSection transport) =>
        Connections.GetOrAdd(transport.Weights, address => new Lazy<StackExchange.Redis.ConnectionMultiplexer>(() => RedisConnection.Connect(address, RedisTls(transport)))).Value;

    private static RedisTls RedisTls(TransportSection transport) =>
        new(transport.RedisCaFile, transport.RedisClientCertFile, transport.RedisClientKeyFile);
}
