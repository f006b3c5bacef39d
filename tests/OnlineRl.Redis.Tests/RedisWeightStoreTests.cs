using StackExchange.Redis;

namespace OnlineRl.Redis.Tests;

public class RedisWeightStoreTests
{
    private static Dictionary<string, Tensor> SampleWeights(long seed)
    {
        torch.manual_seed(seed);
        return new Dictionary<string, Tensor>
        {
            ["embed.weight"] = torch.randn(new long[] { 300, 64 }).DetachFromDisposeScope(),
            ["layers.0.mlp.weight"] = torch.randn(new long[] { 64, 128 }).DetachFromDisposeScope(),
            ["norm.weight"] = torch.ones(new long[] { 64 }).DetachFromDisposeScope(),
            ["step_buffer"] = torch.arange(10).DetachFromDisposeScope(),
        };
    }

    private static byte[] BytesOf(Tensor t)
    {
        var bytes = t.bytes.ToArray();
        return bytes;
    }

    private static void AssertBitIdentical(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected)
        {
            Assert.Equal(e.shape, actual[name].shape);
            Assert.Equal(e.dtype, actual[name].dtype);
            Assert.Equal(BytesOf(e), BytesOf(actual[name]));
        }
    }

    private static (ConnectionMultiplexer Connection, WeightStore Store, IDatabase Db) Connect(RedisServer server, string prefix, int keepNewest = 2)
    {
        var connection = RedisConnection.Connect(server.Address);
        var db = connection.GetDatabase();
        return (connection, new WeightStore(new RedisBlobStore(db), new WeightStoreOptions { Prefix = prefix, ChunkBytes = 10_000, KeepNewest = keepNewest }), db);
    }

    [SkippableFact]
    public async Task Published_weights_load_bit_identical_from_another_connection()
    {
        var server = RedisServer.Shared;
        var prefix = $"w-{Guid.NewGuid():N}";
        var (learnerConnection, learner, _) = Connect(server, prefix);
        var (generatorConnection, generator, _) = Connect(server, prefix);
        using (learnerConnection)
        using (generatorConnection)
        {
            var weights = SampleWeights(1);
            var manifest = await learner.PublishAsync(weights, step: 3);
            Assert.True(manifest.Tensors[0].Chunks.Length > 5);
            Assert.Equal(1, await generator.CurrentVersionAsync());
            AssertBitIdentical(weights, await generator.LoadAsync(1));

            var bf16 = new WeightStore(new RedisBlobStore(learnerConnection.GetDatabase()),
                new WeightStoreOptions { Prefix = prefix, TransferType = ScalarType.BFloat16 });
            await bf16.PublishAsync(weights, step: 4);
            var loaded = await generator.LoadAsync(2, dtype: ScalarType.Float32);
            Assert.Equal(weights["embed.weight"].to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray(), loaded["embed.weight"].data<float>().ToArray());
        }
    }

    [SkippableFact]
    public async Task A_corrupted_chunk_is_refused_and_the_previous_version_still_loads()
    {
        var server = RedisServer.Shared;
        var (connection, store, db) = Connect(server, $"w-{Guid.NewGuid():N}");
        using (connection)
        {
            var v1 = SampleWeights(1);
            await store.PublishAsync(v1, 1);
            var manifest = await store.PublishAsync(SampleWeights(2), 2);
            var key = manifest.Tensors[1].Chunks[1];
            var bytes = (byte[])(await db.StringGetAsync(key))!;
            bytes[100] ^= 0x01; // one flipped bit, written behind the store's back
            await db.StringSetAsync(key, bytes);

            // That no tensor of version 2 outlives the failure is checked in WeightStoreTests, where the load
            // stays on one thread: TorchSharp counts live tensors per thread, and Redis replies resume on others.
            var error = await Assert.ThrowsAsync<WeightIntegrityException>(() => store.LoadAsync(2));
            Assert.Contains("checksum", error.Message);
            Assert.Contains("layers.0.mlp.weight", error.Message);
            AssertBitIdentical(v1, await store.LoadAsync(1));
        }
    }

    [SkippableFact]
    public async Task Weights_published_before_a_server_restart_load_after_it()
    {
        using var server = RedisServer.Start();
        var (connection, store, _) = Connect(server, "w");
        using (connection)
        {
            var weights = SampleWeights(5);
            await store.PublishAsync(weights, 1);
            server.Restart();
            AssertBitIdentical(weights, await store.LoadAsync(1));
        }
    }

    [SkippableFact]
    public async Task Reports_of_generators_expire_unless_renewed()
    {
        var server = RedisServer.Shared;
        using var connection = RedisConnection.Connect(server.Address);
        var registry = new GeneratorRegistry(connection.GetDatabase(), $"w-{Guid.NewGuid():N}", TimeSpan.FromMilliseconds(500));
        await registry.ReportAsync("gen-a", 3);
        await registry.ReportAsync("gen-b", 4);
        await registry.ReportAsync("gen-c", 4);
        await registry.LeaveAsync("gen-c");
        Assert.Equal(new Dictionary<string, long> { ["gen-a"] = 3, ["gen-b"] = 4 }, await registry.LiveHoldersAsync());
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(250);
            await registry.ReportAsync("gen-b", 5); // gen-b keeps reporting, gen-a died
        }
        Assert.Equal(new Dictionary<string, long> { ["gen-b"] = 5 }, await registry.LiveHoldersAsync());
        Assert.Equal([5L], await registry.HeldVersionsAsync());
    }

    [SkippableFact]
    public async Task Pruning_keeps_the_versions_live_generators_hold_and_the_newest()
    {
        var server = RedisServer.Shared;
        var prefix = $"w-{Guid.NewGuid():N}";
        var (connection, store, _) = Connect(server, prefix);
        using (connection)
        {
            var registry = new GeneratorRegistry(connection.GetDatabase(), prefix, TimeSpan.FromMilliseconds(300));
            var weights = SampleWeights(1);
            for (var step = 1; step <= 6; step++) await store.PublishAsync(weights, step);
            await registry.ReportAsync("gen-old", 1);
            await Task.Delay(600); // gen-old died holding version 1
            await registry.ReportAsync("gen-a", 3);
            await registry.ReportAsync("gen-b", 6);
            await registry.ReportAsync("gen-new", 0); // started, no weights loaded yet: pins nothing

            var deleted = await store.PruneAsync(await registry.HeldVersionsAsync());
            Assert.Equal([2L, 1L], deleted);
            foreach (var gone in new[] { 1L, 2L })
                await Assert.ThrowsAsync<WeightIntegrityException>(() => store.LoadAsync(gone));
            for (var kept = 3L; kept <= 6; kept++) AssertBitIdentical(weights, await store.LoadAsync(kept));
        }
    }
}
