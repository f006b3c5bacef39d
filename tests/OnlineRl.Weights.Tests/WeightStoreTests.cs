namespace OnlineRl.Weights.Tests;

public class WeightStoreTests
{
    private static Dictionary<string, Tensor> SampleWeights(long seed)
    {
        torch.manual_seed(seed);
        return new Dictionary<string, Tensor>
        {
            ["embed.weight"] = torch.randn(new long[] { 300, 64 }).DetachFromDisposeScope(),
            ["norm.weight"] = torch.ones(new long[] { 64 }).DetachFromDisposeScope(),
            ["step_buffer"] = torch.arange(10).DetachFromDisposeScope(),
        };
    }

    private static void AssertSame(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected)
        {
            Assert.Equal(e.shape, actual[name].shape);
            Assert.Equal(e.dtype, actual[name].dtype);
            var eb = e.bytes.ToArray();
            var ab = actual[name].bytes.ToArray();
            Assert.Equal(eb, ab);
        }
    }

    [Fact]
    public async Task PublishedVersionLoadsBitForBitAcrossChunks()
    {
        var blobs = new InMemoryBlobStore();
        var store = new WeightStore(blobs, new WeightStoreOptions { ChunkBytes = 10_000 });
        Assert.Null(await store.CurrentVersionAsync());
        var weights = SampleWeights(1);
        var manifest = await store.PublishAsync(weights, step: 7);
        Assert.Equal(1, manifest.Version);
        Assert.Equal(7, manifest.Step);
        Assert.True(manifest.Tensors.Single(t => t.Name == "embed.weight").Chunks.Length > 5);
        Assert.Equal(1, await store.CurrentVersionAsync());
        var loaded = await store.LoadAsync(1);
        AssertSame(weights, loaded);
        Assert.Equal(2, (await store.PublishAsync(weights, 8)).Version);
    }

    [Fact]
    public async Task Bfloat16TransferHalvesTheBytesAndConvertsBack()
    {
        var store = new WeightStore(new InMemoryBlobStore(), new WeightStoreOptions { TransferType = ScalarType.BFloat16 });
        var weights = SampleWeights(2);
        var manifest = await store.PublishAsync(weights, 1);
        Assert.Equal(300 * 64 * 2 + 64 * 2 + 10 * 8, manifest.TotalBytes);
        var loaded = await store.LoadAsync(1, dtype: ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, loaded["embed.weight"].dtype);
        Assert.Equal(ScalarType.Int64, loaded["step_buffer"].dtype);
        var expected = weights["embed.weight"].to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray();
        Assert.Equal(expected, loaded["embed.weight"].data<float>().ToArray());
    }

    [Fact]
    public async Task CorruptOrMissingChunkIsRefusedAndNothingIsReturned()
    {
        var blobs = new InMemoryBlobStore();
        var store = new WeightStore(blobs, new WeightStoreOptions { ChunkBytes = 10_000 });
        var manifest = await store.PublishAsync(SampleWeights(3), 1);
        var key = manifest.Tensors[0].Chunks[2];
        var bytes = (await blobs.GetAsync(key))!;
        bytes[17] ^= 0x40;
        await blobs.SetAsync(key, bytes);
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var error = await Assert.ThrowsAsync<WeightIntegrityException>(() => store.LoadAsync(1));
        Assert.Contains("checksum", error.Message);
        Assert.Contains("embed.weight", error.Message);
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);

        await blobs.DeleteAsync(new[] { manifest.Tensors[1].Chunks[0] });
        bytes[17] ^= 0x40;
        await blobs.SetAsync(key, bytes);
        error = await Assert.ThrowsAsync<WeightIntegrityException>(() => store.LoadAsync(1));
        Assert.Contains("missing", error.Message);
        error = await Assert.ThrowsAsync<WeightIntegrityException>(() => store.LoadAsync(5));
        Assert.Contains("no manifest", error.Message);
    }

    [Fact]
    public async Task AManifestWithoutOurChecksumsIsRefusedWithTheFieldNamed()
    {
        var blobs = new InMemoryBlobStore();
        var store = new WeightStore(blobs, new WeightStoreOptions { Prefix = "w" });
        await store.PublishAsync(SampleWeights(4), 1);
        // As an earlier release wrote it: SHA-256 checksums under another name.
        var json = System.Text.Encoding.UTF8.GetString((await blobs.GetAsync("w:v1:manifest"))!);
        Assert.Contains("\"ChunkXxh128\"", json);
        await blobs.SetAsync("w:v1:manifest", System.Text.Encoding.UTF8.GetBytes(json.Replace("\"ChunkXxh128\"", "\"ChunkSha256\"")));
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var error = await Assert.ThrowsAsync<WeightIntegrityException>(() => store.LoadAsync(1));
        Assert.Contains("ChunkXxh128", error.Message);
        Assert.Contains("embed.weight", error.Message);
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public async Task PruneKeepsHeldAndNewestVersions()
    {
        var blobs = new InMemoryBlobStore();
        var store = new WeightStore(blobs, new WeightStoreOptions { KeepNewest = 2 });
        var weights = SampleWeights(4);
        for (var i = 0; i < 6; i++) await store.PublishAsync(weights, i);
        // A generator still holds version 3: versions 1 and 2 go, 3..6 stay.
        Assert.Equal(new long[] { 2, 1 }, await store.PruneAsync(new long[] { 3, 6 }));
        await Assert.ThrowsAsync<WeightIntegrityException>(() => store.LoadAsync(2));
        Assert.NotEmpty(await store.LoadAsync(3));
        // Nobody holds old versions any more: only the newest two remain.
        Assert.Equal(new long[] { 4, 3 }, await store.PruneAsync(Array.Empty<long>()));
        Assert.All(blobs.Keys.Where(k => k.Contains(":v")), k => Assert.True(k.Contains(":v5:") || k.Contains(":v6:"), k));
    }

    [Fact]
    public async Task PruneDeletesAVersionThatAStoreRestartBroughtBackBelowAGap()
    {
        var blobs = new InMemoryBlobStore();
        var store = new WeightStore(blobs, new WeightStoreOptions { KeepNewest = 2 });
        var weights = SampleWeights(4);
        for (var i = 0; i < 4; i++) await store.PublishAsync(weights, i);
        Assert.Equal(new long[] { 2, 1 }, await store.PruneAsync(Array.Empty<long>()));
        // Redis killed right after the next prune deleted version 3: its append-only file lost those deletions and the
        // new mark, so version 3 comes back while version 4's deletion (a second earlier) stays.
        var lostWrites = blobs.Keys.Where(k => k.Contains(":v3:") || k.EndsWith(":pruned_through", StringComparison.Ordinal))
            .ToDictionary(k => k, k => blobs.GetAsync(k).Result!);
        for (var i = 4; i < 6; i++) await store.PublishAsync(weights, i);
        Assert.Equal(new long[] { 4, 3 }, await store.PruneAsync(Array.Empty<long>()));
        foreach (var (key, value) in lostWrites) await blobs.SetAsync(key, value);

        await store.PublishAsync(weights, 6);
        Assert.Equal(new long[] { 5, 3 }, await store.PruneAsync(Array.Empty<long>()));
        Assert.All(blobs.Keys.Where(k => k.Contains(":v")), k => Assert.True(k.Contains(":v6:") || k.Contains(":v7:"), k));
    }
}
