using System.Collections.Concurrent;

namespace OnlineRl.Weights;

/// <summary>
/// A key-value store for byte blobs: what the weight store needs from its backend (memory for one-process
/// runs, Redis across machines).
/// </summary>
public interface IBlobStore
{
    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>, replacing any previous value.</summary>
    Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default);

    /// <summary>The value under <paramref name="key"/>, or null.</summary>
    Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Removes the keys (missing keys are ignored).</summary>
    Task DeleteAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default);
}

/// <summary>An <see cref="IBlobStore"/> in process memory.</summary>
public sealed class InMemoryBlobStore : IBlobStore
{
    private readonly ConcurrentDictionary<string, byte[]> values = new();

    /// <summary>Keys currently stored (for tests and diagnostics).</summary>
    public ICollection<string> Keys => values.Keys;

    /// <inheritdoc />
    public Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default)
    {
        values[key] = value.ToArray();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult(values.TryGetValue(key, out var v) ? v : null);

    /// <inheritdoc />
    public Task DeleteAsync(IEnumerable<string> keys, CancellationToken cancellationToken = default)
    {
        foreach (var key in keys) values.TryRemove(key, out _);
        return Task.CompletedTask;
    }
}
