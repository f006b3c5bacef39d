using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnlineRl.Weights;
using StackExchange.Redis;

namespace OnlineRl.Redis;

/// <summary>
/// The <see cref="IBlobStore"/> under <see cref="WeightStore"/> across machines: one Redis string per blob
/// (weight chunks are a few MiB, well below Redis's 512 MiB limit). Commands that fail because the server
/// is unreachable or restarting are retried for <paramref name="retryFor"/>, so a weight publication or
/// load survives a server restart.
/// </summary>
/// <param name="database">The database (the caller owns its connection; see <see cref="RedisConnection.Connect"/>).</param>
/// <param name="retryFor">How long to keep retrying a command while the server is unreachable (default 60 s).</param>
/// <param name="logger">Where retries are reported.</param>
public sealed class RedisBlobStore(IDatabase database, TimeSpan? retryFor = null, ILogger? logger = null) : IBlobStore
{
    private readonly TimeSpan _retryFor = retryFor ?? TimeSpan.FromSeconds(60);
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    /// <summary>Keys deleted per command.</summary>
    private const int DeleteBatch = 512;

    /// <inheritdoc />
    public Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default) =>
        RetryAsync(() => database.StringSetAsync(key, value), cancellationToken);

    /// <inheritdoc />
    public async Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default) =>
        (byte[]?)await RetryAsync(() => database.StringGetAsync(key), cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async Task DeleteAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        foreach (var batch in keys.Chunk(DeleteBatch))
        {
            var redisKeys = batch.Select(k => (RedisKey)k).ToArray();
            await RetryAsync(() => database.KeyDeleteAsync(redisKeys), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<T> RetryAsync<T>(Func<Task<T>> command, CancellationToken cancellationToken)
    {
        var giveUpAt = DateTime.UtcNow + _retryFor;
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return await command().ConfigureAwait(false);
            }
            catch (Exception e) when (RedisConnection.IsTransient(e) && DateTime.UtcNow + delay < giveUpAt)
            {
                _logger.LogWarning("Redis blob store: {Error}; retrying in {Delay} ms", e.Message, delay.TotalMilliseconds);
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
    }
}
