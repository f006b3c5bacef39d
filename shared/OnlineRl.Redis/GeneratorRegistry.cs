using System.Globalization;
using StackExchange.Redis;

namespace OnlineRl.Redis;

/// <summary>
/// Which weight version each live generator holds, so that the learner never deletes a version in use
/// (<see cref="Weights.WeightStore.PruneAsync"/> takes <see cref="HeldVersionsAsync"/>).
/// </summary>
/// <remarks>
/// Each generator reports its version with <see cref="ReportAsync"/> after every swap and as a heartbeat
/// (more often than <see cref="TimeToLive"/>): the report is a key <c>{prefix}:holder:{id}</c> that Redis
/// expires after <see cref="TimeToLive"/>, so a generator that dies stops counting by itself. The set
/// <c>{prefix}:holders</c> lists the ids to look up.
/// </remarks>
/// <param name="database">The database (the caller owns its connection).</param>
/// <param name="keyPrefix">Prefix of the registry's keys, normally the weight store's prefix.</param>
/// <param name="timeToLive">How long a report counts (default 30 s).</param>
public sealed class GeneratorRegistry(IDatabase database, string keyPrefix = "onlinerl:weights", TimeSpan? timeToLive = null)
{
    private readonly RedisKey _holders = $"{keyPrefix}:holders";

    /// <summary>How long a report counts without being renewed.</summary>
    public TimeSpan TimeToLive { get; } = timeToLive ?? TimeSpan.FromSeconds(30);

    /// <summary>Records that <paramref name="generatorId"/> holds <paramref name="version"/> (renews the heartbeat).</summary>
    /// <param name="generatorId">The generator's service id.</param>
    /// <param name="version">The weight version it serves.</param>
    public async Task ReportAsync(string generatorId, long version)
    {
        ArgumentException.ThrowIfNullOrEmpty(generatorId);
        var transaction = database.CreateTransaction();
        _ = transaction.SetAddAsync(_holders, generatorId);
        _ = transaction.StringSetAsync(HolderKey(generatorId), version, TimeToLive);
        await transaction.ExecuteAsync().ConfigureAwait(false);
    }

    /// <summary>Removes the report of a generator that shuts down cleanly.</summary>
    /// <param name="generatorId">The generator's service id.</param>
    public async Task LeaveAsync(string generatorId)
    {
        ArgumentException.ThrowIfNullOrEmpty(generatorId);
        var transaction = database.CreateTransaction();
        _ = transaction.KeyDeleteAsync(HolderKey(generatorId));
        _ = transaction.SetRemoveAsync(_holders, generatorId);
        await transaction.ExecuteAsync().ConfigureAwait(false);
    }

    /// <summary>The live generators and the version each holds (reports that expired are forgotten).</summary>
    public async Task<IReadOnlyDictionary<string, long>> LiveHoldersAsync()
    {
        // In one script, so that a report arriving meanwhile is never forgotten with the expired ones.
        var pairs = (RedisResult[])(await database.ScriptEvaluateAsync(LiveHoldersScript, [_holders], [$"{keyPrefix}:holder:"])
            .ConfigureAwait(false))!;
        var live = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < pairs.Length; i += 2)
            live[(string)pairs[i]!] = long.Parse((string)pairs[i + 1]!, CultureInfo.InvariantCulture);
        return live;
    }

    private const string LiveHoldersScript = """
        local live = {}
        for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          local version = redis.call('GET', ARGV[1] .. id)
          if version then
            live[#live + 1] = id
            live[#live + 1] = version
          else
            redis.call('SREM', KEYS[1], id)
          end
        end
        return live
        """;

    /// <summary>
    /// The distinct versions live generators hold (the argument of <see cref="Weights.WeightStore.PruneAsync"/>). A
    /// generator that holds none yet (version 0: started, waiting for its first load) pins nothing; counted, it kept
    /// every version from being pruned until it had loaded one.
    /// </summary>
    public async Task<IReadOnlyCollection<long>> HeldVersionsAsync() =>
        (await LiveHoldersAsync().ConfigureAwait(false)).Values.Where(v => v > 0).Distinct().ToArray();

    private RedisKey HolderKey(string generatorId) => $"{keyPrefix}:holder:{generatorId}";
}
