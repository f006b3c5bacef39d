using OnlineRl.Messaging;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>
/// Builds the transports a configuration names (<c>transport.bus</c>, <c>transport.weights</c>). The pipeline knows
/// only the interfaces it returns; OnlineRl.Hosting's <c>Transports</c> adds Redis and Kafka.
/// </summary>
public interface ITransportFactory
{
    /// <summary>The event bus named by <c>transport.bus</c>.</summary>
    /// <exception cref="ConfigException">The URI is invalid or its transport is not built in.</exception>
    IEventBus CreateBus(TransportSection transport);

    /// <summary>The blob store for weights named by <c>transport.weights</c>.</summary>
    /// <exception cref="ConfigException">The URI is invalid or its store is not built in.</exception>
    IBlobStore CreateBlobStore(TransportSection transport);

    /// <summary>Where generators report the weights they hold and the learner reads what it may not prune.</summary>
    /// <param name="transport">The transport settings.</param>
    /// <param name="weightsPrefix">The key prefix of the run's weights (<see cref="PipelineServices.WeightsPrefix"/>).</param>
    IGeneratorStatusReporter CreateGeneratorStatus(TransportSection transport, string weightsPrefix);
}

/// <summary>
/// The transports of one process: the in-process bus, weights in memory, generator status in this process. A
/// broker address is refused naming its key (OnlineRl.Hosting's <c>Transports</c> builds those).
/// </summary>
public sealed class InProcessTransports : ITransportFactory
{
    /// <summary>The one instance (it holds nothing).</summary>
    public static InProcessTransports Instance { get; } = new();

    private InProcessTransports()
    {
    }

    /// <inheritdoc />
    public IEventBus CreateBus(TransportSection transport) => transport.Bus == TransportUris.InProcess
        ? new InProcessEventBus()
        : throw new ConfigException($"config key 'transport.bus': '{TransportUris.Describe(transport.Bus)}' needs the broker transports of OnlineRl.Hosting (the onlinerl command has them)");

    /// <inheritdoc />
    public IBlobStore CreateBlobStore(TransportSection transport) => transport.Weights == TransportUris.Memory
        ? new InMemoryBlobStore()
        : throw new ConfigException($"config key 'transport.weights': '{TransportUris.Describe(transport.Weights)}' needs the Redis store of OnlineRl.Hosting (the onlinerl command has it)");

    /// <inheritdoc />
    public IGeneratorStatusReporter CreateGeneratorStatus(TransportSection transport, string weightsPrefix) => new InProcessGeneratorStatus();
}
