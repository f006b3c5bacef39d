using System.Collections.Concurrent;

namespace OnlineRl.Pipeline;

/// <summary>
/// Where generators report the weights version they hold: what the weight store may not prune yet, and what
/// tests and operators read to see every generator reach the newest version. A broker-backed registry (e.g.
/// keys with a time-to-live in Redis, OnlineRl.Hosting's RedisGeneratorStatus) implements it for separate processes.
/// </summary>
public interface IGeneratorStatusReporter
{
    /// <summary>Records that <paramref name="generatorId"/> now samples with weights <paramref name="heldVersion"/> (0: none yet).</summary>
    ValueTask ReportAsync(string generatorId, long heldVersion, CancellationToken cancellationToken = default);

    /// <summary>The versions live generators hold (the weight store keeps them when it prunes).</summary>
    ValueTask<IReadOnlyCollection<long>> HeldVersionsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// How often a generator renews its report while its version stays the same; null: reports never expire. A
    /// registry whose reports expire (so that a dead generator pins nothing) needs renewals well within that time.
    /// </summary>
    TimeSpan? Heartbeat => null;
}

/// <summary>Generator status within one process (the all-in-one run and tests).</summary>
public sealed class InProcessGeneratorStatus : IGeneratorStatusReporter
{
    private readonly ConcurrentDictionary<string, long> held = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public ValueTask ReportAsync(string generatorId, long heldVersion, CancellationToken cancellationToken = default)
    {
        held[generatorId] = heldVersion;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyCollection<long>> HeldVersionsAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyCollection<long>>(held.Values.Where(v => v > 0).Distinct().ToList());

    /// <summary>The version each generator reported last.</summary>
    public IReadOnlyDictionary<string, long> HeldVersions => new Dictionary<string, long>(held, StringComparer.Ordinal);
}
