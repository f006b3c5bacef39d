using OnlineRl.Pipeline;
using OnlineRl.Redis;

namespace OnlineRl.Hosting;

/// <summary>Generator status kept in Redis with a time-to-live (separate processes): a dead generator pins nothing.</summary>
public sealed class RedisGeneratorStatus(GeneratorRegistry registry) : IGeneratorStatusReporter
{
    /// <inheritdoc />
    public async ValueTask ReportAsync(string generatorId, long heldVersion, CancellationToken cancellationToken = default) =>
        await registry.ReportAsync(generatorId, heldVersion).WaitAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyCollection<long>> HeldVersionsAsync(CancellationToken cancellationToken = default) =>
        await registry.HeldVersionsAsync().WaitAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>A third of the registry's time-to-live: two renewals may fail (Redis restarting) before a live generator drops out.</summary>
    public TimeSpan? Heartbeat => registry.TimeToLive / 3;
}
