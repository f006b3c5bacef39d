using System.Buffers;
using System.IO.Hashing;
using System.Text.Json;

namespace OnlineRl.Weights;

/// <summary>One tensor in a published version: where its bytes are and how to check them.</summary>
/// <param name="Name">State-dict name.</param>
/// <param name="DType">Element type as published (may differ from the learner's).</param>
/// <param name="Shape">Sizes.</param>
/// <param name="Chunks">Blob keys holding the bytes, in order.</param>
/// <param name="ChunkXxh128">Hex XXH128 checksum of each chunk (see <see cref="WeightStore.Checksum"/>).</param>
public sealed record TensorEntry(string Name, ScalarType DType, long[] Shape, string[] Chunks, string[] ChunkXxh128);

/// <summary>The manifest of a published policy version.</summary>
/// <param name="Version">Monotonic version number.</param>
/// <param name="Step">Learner step that produced it.</param>
/// <param name="CreatedUnixMs">Publication time.</param>
/// <param name="Tensors">Every tensor.</param>
/// <param name="TotalBytes">Bytes of all tensors.</param>
public sealed record WeightManifest(long Version, long Step, long CreatedUnixMs, TensorEntry[] Tensors, long TotalBytes);

/// <summary>A published version failed verification; nothing of it was loaded.</summary>
public sealed class WeightIntegrityException(string message) : Exception(message);

/// <summary>Settings of a <see cref="WeightStore"/>.</summary>
public sealed record WeightStoreOptions
{
    /// <summary>Key prefix, normally including the run id.</summary>
    public string Prefix { get; init; } = "onlinerl:weights";
    /// <summary>Largest chunk in bytes.</summary>
    public int ChunkBytes { get; init; } = 4 << 20;
    /// <summary>Convert floating-point tensors to this type for transfer (e.g. BFloat16 halves the bytes).</summary>
    public ScalarType? TransferType { get; init; }
    /// <summary>Newest versions always kept, even when no generator holds them.</summary>
    public int KeepNewest { get; init; } = 2;
    /// <summary>Chunk writes or reads kept in flight at once, so that hashing overlaps the transfers.</summary>
    public int ChunksInFlight { get; init; } = 4;
}

/// <summary>
/// Versioned policy weights over an <see cref="IBlobStore"/>. Publishing writes every chunk, then the
/// manifest, then moves the "current" pointer, so a reader never sees a partial version. Loading checks
/// every chunk's checksum against the manifest before creating a single tensor.
/// </summary>
public sealed class WeightStore(IBlobStore blobs, WeightStoreOptions? options = null)
{
    private readonly WeightStoreOptions options = options ?? new WeightStoreOptions();
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    private string CurrentKey => $"{options.Prefix}:current";
    private string ManifestKey(long version) => $"{options.Prefix}:v{version}:manifest";
    private string PrunedThroughKey => $"{options.Prefix}:pruned_through";
    private string ChunkKey(long version, int tensor, int chunk) => $"{options.Prefix}:v{version}:t{tensor}:c{chunk}";

    /// <summary>The newest published version, or null when none.</summary>
    public async Task<long?> CurrentVersionAsync(CancellationToken cancellationToken = default)
    {
        var bytes = await blobs.GetAsync(CurrentKey, cancellationToken).ConfigureAwait(false);
        return bytes is null ? null : BitConverter.ToInt64(bytes);
    }

    /// <summary>Publishes <paramref name="tensors"/> as the next version and returns its manifest.</summary>
    public async Task<WeightManifest> PublishAsync(IEnumerable<KeyValuePair<string, Tensor>> tensors, long step, CancellationToken cancellationToken = default)
    {
        var version = (await CurrentVersionAsync(cancellationToken).ConfigureAwait(false) ?? 0) + 1;
        var entries = new List<TensorEntry>();
        long total = 0;
        var index = 0;
        // Two pooled buffers used in turn: one tensor's chunks are still being written from one while the
        // next tensor is copied into the other. A buffer is reused only after its writes completed.
        var buffers = new (byte[] Bytes, List<Task> Writes)[] { ([], []), ([], []) };
        try
        {
            foreach (var (name, tensor) in tensors)
            {
                var (bytes, writes) = buffers[index % 2];
                await Task.WhenAll(writes).ConfigureAwait(false);
                writes.Clear();
                long size;
                ScalarType type;
                using (var scope = torch.NewDisposeScope())
                {
                    var sent = options.TransferType is { } t && torch.is_floating_point(tensor.dtype) && tensor.dtype != t ? tensor.to(t) : tensor;
                    type = sent.dtype;
                    size = sent.NumberOfElements * sent.ElementSize;
                    if (bytes.Length < size)
                    {
                        if (bytes.Length > 0) ArrayPool<byte>.Shared.Return(bytes);
                        bytes = ArrayPool<byte>.Shared.Rent(checked((int)size));
                        buffers[index % 2] = (bytes, writes);
                    }
                    using var contiguous = sent.device_type == DeviceType.CPU ? sent.contiguous() : sent.cpu().contiguous();
                    contiguous.bytes.CopyTo(bytes.AsSpan(0, (int)size));
                }
                var chunkCount = Math.Max(1, (int)((size + options.ChunkBytes - 1) / options.ChunkBytes));
                var keys = new string[chunkCount];
                var hashes = new string[chunkCount];
                for (var c = 0; c < chunkCount; c++)
                {
                    var start = c * options.ChunkBytes;
                    var piece = bytes.AsMemory(start, (int)Math.Min(options.ChunkBytes, size - start));
                    keys[c] = ChunkKey(version, index, c);
                    hashes[c] = Checksum(piece.Span);
                    await WhileTooManyInFlight(buffers[0].Writes, buffers[1].Writes).ConfigureAwait(false);
                    writes.Add(blobs.SetAsync(keys[c], piece, cancellationToken));
                }
                entries.Add(new TensorEntry(name, type, tensor.shape, keys, hashes));
                total += size;
                index++;
            }
            await Task.WhenAll(buffers[0].Writes.Concat(buffers[1].Writes)).ConfigureAwait(false);
        }
        finally
        {
            // Writes still running after a failure keep their buffer: it is left to the garbage collector.
            foreach (var (bytes, writes) in buffers)
                if (bytes.Length > 0 && writes.All(w => w.IsCompleted)) ArrayPool<byte>.Shared.Return(bytes);
        }
        var manifest = new WeightManifest(version, step, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), entries.ToArray(), total);
        await blobs.SetAsync(ManifestKey(version), JsonSerializer.SerializeToUtf8Bytes(manifest, Json), cancellationToken).ConfigureAwait(false);
        await blobs.SetAsync(CurrentKey, BitConverter.GetBytes(version), cancellationToken).ConfigureAwait(false);
        return manifest;
    }

    /// <summary>
    /// The checksum of one chunk: XXH128 in hex. It guards against corruption and truncation in transit or at rest
    /// (a 128-bit hash misses a random change with probability 2^-128) at memory speed, where SHA-256 would cost
    /// about as much as the transfer itself; who may write the weights is Redis's ACLs' and TLS's business, not a
    /// hash's.
    /// </summary>
    public static string Checksum(ReadOnlySpan<byte> chunk) => Convert.ToHexString(XxHash128.Hash(chunk));

    /// <summary>Waits until fewer than <see cref="WeightStoreOptions.ChunksInFlight"/> writes of either list are running.</summary>
    private async Task WhileTooManyInFlight(List<Task> first, List<Task> second)
    {
        while (true)
        {
            var running = first.Where(w => !w.IsCompleted).Concat(second.Where(w => !w.IsCompleted)).ToList();
            if (running.Count < Math.Max(1, options.ChunksInFlight)) return;
            await Task.WhenAny(running).ConfigureAwait(false);
        }
    }

    /// <summary>The manifest of <paramref name="version"/>; throws when it is missing or unreadable.</summary>
    public async Task<WeightManifest> ManifestAsync(long version, CancellationToken cancellationToken = default)
    {
        var bytes = await blobs.GetAsync(ManifestKey(version), cancellationToken).ConfigureAwait(false)
                    ?? throw new WeightIntegrityException($"weights version {version}: no manifest (never published or already deleted)");
        WeightManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<WeightManifest>(bytes, Json) ?? throw new JsonException("null manifest");
        }
        catch (JsonException e)
        {
            throw new WeightIntegrityException($"weights version {version}: unreadable manifest ({e.Message})");
        }
        // Fields a reader depends on; a manifest from another release (e.g. SHA-256 checksums) lacks some.
        if (manifest.Tensors is null)
            throw new WeightIntegrityException($"weights version {version}: manifest has no Tensors");
        foreach (var entry in manifest.Tensors)
        {
            if (entry.Name is null || entry.Shape is null || entry.Chunks is null)
                throw new WeightIntegrityException($"weights version {version}: manifest entry '{entry.Name}' lacks Name, Shape or Chunks");
            if (entry.ChunkXxh128 is null || entry.ChunkXxh128.Length != entry.Chunks.Length)
                throw new WeightIntegrityException(
                    $"weights version {version}: '{entry.Name}' has no ChunkXxh128 checksum for each of its {entry.Chunks.Length} chunks (published by another release?)");
        }
        return manifest;
    }

    /// <summary>
    /// Fetches and verifies every chunk of <paramref name="version"/> and returns its tensors converted to
    /// <paramref name="dtype"/> (when given) on <paramref name="device"/>; the caller owns them. Any missing or
    /// corrupt chunk throws <see cref="WeightIntegrityException"/> and no tensor is returned.
    /// </summary>
    public async Task<Dictionary<string, Tensor>> LoadAsync(long version, Device? device = null, ScalarType? dtype = null,
        CancellationToken cancellationToken = default)
    {
        var manifest = await ManifestAsync(version, cancellationToken).ConfigureAwait(false);
        // Tensor by tensor, each chunk verified and then copied straight into the new tensor's memory (only
        // the chunks read ahead sit in managed memory); on any failure the tensors made so far are disposed
        // and the caller keeps its old weights.
        var chunks = new ChunkReader(blobs, manifest.Tensors.SelectMany(t => t.Chunks), options.ChunksInFlight, cancellationToken);
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var entry in manifest.Tensors)
            {
                var tensor = torch.empty(entry.Shape, entry.DType).DetachFromDisposeScope();
                try
                {
                    await ReadVerifiedAsync(version, entry, chunks, tensor).ConfigureAwait(false);
                    if ((device is { } target && target.type != DeviceType.CPU) || (dtype is { } d && torch.is_floating_point(tensor.dtype) && tensor.dtype != d))
                    {
                        using var original = tensor;
                        tensor = original.to(dtype is { } t && torch.is_floating_point(original.dtype) ? t : original.dtype, device ?? CPU).DetachFromDisposeScope();
                    }
                    result[entry.Name] = tensor;
                }
                catch
                {
                    tensor.Dispose();
                    throw;
                }
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>Reads blobs in a fixed order, keeping a few reads ahead of the consumer.</summary>
    private sealed class ChunkReader(IBlobStore blobs, IEnumerable<string> keys, int ahead, CancellationToken cancellationToken)
    {
        private readonly IEnumerator<string> _keys = keys.GetEnumerator();
        private readonly Queue<Task<byte[]?>> _reads = new();

        /// <summary>The next blob in order (null when missing).</summary>
        public Task<byte[]?> NextAsync()
        {
            while (_reads.Count < Math.Max(1, ahead) && _keys.MoveNext()) _reads.Enqueue(blobs.GetAsync(_keys.Current, cancellationToken));
            return _reads.Dequeue();
        }
    }

    /// <summary>Fills the (new, contiguous, CPU) <paramref name="tensor"/> with the verified chunks of <paramref name="entry"/>.</summary>
    private static async Task ReadVerifiedAsync(long version, TensorEntry entry, ChunkReader chunks, Tensor tensor)
    {
        var size = tensor.NumberOfElements * tensor.ElementSize;
        long offset = 0;
        for (var c = 0; c < entry.Chunks.Length; c++)
        {
            var chunk = await chunks.NextAsync().ConfigureAwait(false)
                        ?? throw new WeightIntegrityException($"weights version {version}: chunk {entry.Chunks[c]} of '{entry.Name}' is missing");
            if (Checksum(chunk) != entry.ChunkXxh128[c])
                throw new WeightIntegrityException($"weights version {version}: chunk {c} of '{entry.Name}' fails its checksum");
            if (offset + chunk.Length > size)
                throw new WeightIntegrityException($"weights version {version}: '{entry.Name}' has more bytes than its shape needs");
            chunk.CopyTo(tensor.bytes.Slice((int)offset));
            offset += chunk.Length;
        }
        if (offset != size)
            throw new WeightIntegrityException($"weights version {version}: '{entry.Name}' has {offset} bytes, its shape needs {size}");
    }


    /// <summary>
    /// Deletes versions older than every version in <paramref name="heldVersions"/> (what live generators
    /// hold), always keeping the newest <see cref="WeightStoreOptions.KeepNewest"/>; returns the deleted versions.
    /// Every version above the last prune's mark is looked at, gaps included: a Redis restarted from its append-only
    /// file can bring back a version whose deletion it lost (its last second of writes) while a later one stays
    /// deleted; that version then sits below a gap, and a walk stopping at the first gap kept it for good (the soak
    /// found 5 versions stored where 3 were allowed). The mark is written after the deletions, so a lost mark only
    /// makes the next prune look further.
    /// </summary>
    public async Task<IReadOnlyList<long>> PruneAsync(IReadOnlyCollection<long> heldVersions, CancellationToken cancellationToken = default)
    {
        var current = await CurrentVersionAsync(cancellationToken).ConfigureAwait(false);
        if (current is null) return Array.Empty<long>();
        var keepFrom = Math.Max(1, current.Value - options.KeepNewest + 1);
        if (heldVersions.Count > 0) keepFrom = Math.Min(keepFrom, heldVersions.Min());
        var markBytes = await blobs.GetAsync(PrunedThroughKey, cancellationToken).ConfigureAwait(false);
        long? mark = markBytes is { Length: 8 } ? BitConverter.ToInt64(markBytes) : null;
        var deleted = new List<long>();
        for (var v = keepFrom - 1; v > (mark ?? 0); v--)
        {
            var manifestBytes = await blobs.GetAsync(ManifestKey(v), cancellationToken).ConfigureAwait(false);
            if (manifestBytes is null)
            {
                // Without a mark (a store older than it) the first gap is where an earlier prune stopped.
                if (mark is null) break;
                continue;
            }
            var manifest = JsonSerializer.Deserialize<WeightManifest>(manifestBytes, Json)!;
            await blobs.DeleteAsync(manifest.Tensors.SelectMany(t => t.Chunks), cancellationToken).ConfigureAwait(false);
            await blobs.DeleteAsync(new[] { ManifestKey(v) }, cancellationToken).ConfigureAwait(false);
            deleted.Add(v);
        }
        if (keepFrom - 1 > (mark ?? 0)) await blobs.SetAsync(PrunedThroughKey, BitConverter.GetBytes(keepFrom - 1), cancellationToken).ConfigureAwait(false);
        return deleted;
    }
}
