using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineRl.Model.Tests;

// Our forward pass against an independent PyTorch implementation reading the same safetensors file.
public class ModelParityTests
{
    private static readonly long[][] Batch = { new long[] { 5, 17, 3, 88, 42, 0, 96, 7, 7, 12 }, new long[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 } };

    private static float[] ReferenceLogits(string directory)
    {
        var result = PythonReference.Run("forward", directory, JsonSerializer.Serialize(Batch));
        return result["logits"]!.AsArray().SelectMany(b => b!.AsArray().SelectMany(t => t!.AsArray().Select(v => (float)v!.GetValue<double>()))).ToArray();
    }

    private static float[] OurLogits(TransformerModel model)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var ids = torch.tensor(Batch.SelectMany(b => b).ToArray(), new long[] { Batch.Length, Batch[0].Length });
        return model.forward(ids).data<float>().ToArray();
    }

    [Fact]
    public void CheckpointWrittenByReferenceGivesTheSameLogits()
    {
        using var dir = new TempDir();
        PythonReference.Run("make", dir.Path, "11");
        using var model = Checkpoint.Load(dir.Path);
        Assert.True(model.Config.TieWordEmbeddings);
        Assert.Equal(2, model.Config.NumKvHeads);
        Models.AssertClose(ReferenceLogits(dir.Path), OurLogits(model), 1e-4, "logits");
    }

    [Fact]
    public void CheckpointWrittenByUsIsReadByTheReferenceWithTheSameLogits()
    {
        using var dir = new TempDir();
        using var model = Models.Random(5, tied: false, embeddingStd: 0.5);
        Checkpoint.Save(model, dir.Path);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!;
        Assert.Equal("qwen2", config["model_type"]!.GetValue<string>());
        Models.AssertClose(ReferenceLogits(dir.Path), OurLogits(model), 1e-4, "logits");
    }
}
