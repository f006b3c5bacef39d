namespace OnlineRl.Model.Tests;

// Saving and loading checkpoints: round trips, shards, dtypes, and the errors a user sees.
public class CheckpointTests
{
    private static float[] Logits(TransformerModel model)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return model.forward(torch.tensor(new long[] { 1, 5, 9, 13, 17, 21 }, new long[] { 1, 6 })).to(ScalarType.Float32).data<float>().ToArray();
    }

    [Fact]
    public void SaveThenLoadGivesIdenticalLogits()
    {
        using var dir = new TempDir();
        using var model = Models.Random(21, tied: false, heads: ModelHeads.Value);
        Checkpoint.Save(model, dir.Path);
        using var loaded = Checkpoint.Load(dir.Path);
        Assert.Equal(ModelHeads.Value, loaded.Config.Heads);
        Assert.Equal(Logits(model), Logits(loaded));
    }

    [Fact]
    public void ShardedCheckpointLoads()
    {
        using var dir = new TempDir();
        using var model = Models.Random(22);
        Checkpoint.Save(model, dir.Path, maxShardBytes: 40_000);
        var shards = Directory.GetFiles(dir.Path, "model-*-of-*.safetensors");
        Assert.True(shards.Length > 2, $"expected several shards, got {shards.Length}");
        Assert.True(File.Exists(Path.Combine(dir.Path, "model.safetensors.index.json")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "model.safetensors")));
        using var loaded = Checkpoint.Load(dir.Path);
        Assert.Equal(Logits(model), Logits(loaded));
    }

    [Fact]
    public void Bfloat16OnDiskConvertsOnLoad()
    {
        using var dir = new TempDir();
        using var model = Models.Random(23);
        Checkpoint.Save(model, dir.Path, dtype: ScalarType.BFloat16);
        using (var file = SafeTensorsFile.Open(Path.Combine(dir.Path, "model.safetensors")))
            Assert.All(file.Tensors.Values, t => Assert.Equal(ScalarType.BFloat16, t.Type));
        using var asFloat = Checkpoint.Load(dir.Path, ScalarType.Float32);
        using var asBf16 = Checkpoint.Load(dir.Path);
        Assert.Equal(ScalarType.Float32, asFloat.DType);
        Assert.Equal(ScalarType.BFloat16, asBf16.DType);
        // bf16 keeps ~3 significant digits: the logits stay close to the float32 model's.
        Models.AssertClose(Logits(model), Logits(asFloat), 0.1, "bf16 round trip");
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var dir = new TempDir();
        using var model = Models.Random(24);
        var state = model.state_dict().Where(kv => kv.Key != "model.layers.1.mlp.up_proj.weight");
        Checkpoint.Save(model, dir.Path);
        SafeTensorsFile.Save(Path.Combine(dir.Path, "model.safetensors"), state);
        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir.Path));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", error.Message);
    }

    [Fact]
    public void ShapeMismatchIsNamed()
    {
        using var dir = new TempDir();
        using var model = Models.Random(25);
        Checkpoint.Save(model, dir.Path);
        var config = File.ReadAllText(Path.Combine(dir.Path, "config.json")).Replace("\"intermediate_size\": 96", "\"intermediate_size\": 80");
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), config);
        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir.Path));
        Assert.Contains("gate_proj.weight", error.Message);
        Assert.Contains("[96, 64]", error.Message);
    }

    [Fact]
    public void TruncatedFileIsReported()
    {
        using var dir = new TempDir();
        using var model = Models.Random(26);
        Checkpoint.Save(model, dir.Path);
        var path = Path.Combine(dir.Path, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length - 100).ToArray());
        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir.Path));
        Assert.Contains("truncated", error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void UnsupportedArchitectureNamesTheField()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), """{"model_type": "gpt_neox", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2}""");
        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir.Path));
        Assert.Contains("model_type", error.Message);
        Assert.Contains("gpt_neox", error.Message);
    }

    [Fact]
    public void GarbageHeaderIsReported()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "x.safetensors");
        File.WriteAllBytes(path, BitConverter.GetBytes(12L).Concat("{not json!!}"u8.ToArray()).ToArray());
        var error = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("header", error.Message);
    }
}
