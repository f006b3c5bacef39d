using System.Text.Json.Nodes;

namespace OnlineRl.Model.Tests;

/// <summary>Runs reference/qwen2_reference.py with Debian's /usr/bin/python3 (torch over the same libtorch).</summary>
internal static class PythonReference
{
    public static JsonNode Run(params string[] args)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "reference", "qwen2_reference.py");
        var (code, stdout, stderr) = OnlineRl.TestSupport.PythonProcess.RunSeparated(args.Prepend(script), TimeSpan.FromMinutes(5));
        if (code != 0) throw new InvalidOperationException($"reference script failed ({code}): {stderr}");
        return JsonNode.Parse(stdout)!;
    }
}

/// <summary>A fresh temporary directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "onlinerl-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

internal static class Models
{
    /// <summary>A small Qwen2-style config with GQA, QKV bias and tied embeddings.</summary>
    public static ModelConfig Small(bool tied = true, ModelHeads heads = ModelHeads.None) => new()
    {
        ModelType = "qwen2", VocabSize = 97, HiddenSize = 64, IntermediateSize = 96, NumLayers = 2,
        NumHeads = 4, NumKvHeads = 2, HeadDim = 16, RopeTheta = 10000, RmsNormEps = 1e-6,
        TieWordEmbeddings = tied, AttentionBias = true, MaxPositionEmbeddings = 128, Heads = heads,
    };

    /// <summary>
    /// A random model with weights large enough for position-sensitive logits; <paramref name="embeddingStd"/>
    /// sets how peaked the next-token distributions are (0.15: diverse samples).
    /// </summary>
    public static TransformerModel Random(long seed, bool tied = true, ModelHeads heads = ModelHeads.None, double embeddingStd = 0.15)
    {
        torch.manual_seed(seed);
        var model = new TransformerModel(Small(tied, heads));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (!name.Contains("norm")) p.normal_(0, name.Contains("embed") ? embeddingStd : 0.1);
        return model;
    }

    public static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = 0.0;
        for (var i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst < tolerance, $"{what}: max abs diff {worst:E3} >= {tolerance:E1}");
    }
}
