namespace OnlineRl.Model.Tests;

// LoRA adapters: training only the adapter, merging, and the PEFT file layout.
public class LoraTests
{
    private static float[] Logits(TransformerModel model)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return model.forward(torch.tensor(new long[] { 2, 4, 6, 8, 10, 12, 14 }, new long[] { 1, 7 })).data<float>().ToArray();
    }

    /// <summary>A few AdamW steps on a next-token loss so that the adapter is non-trivial.</summary>
    private static void Train(TransformerModel model, int steps)
    {
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = torch.optim.AdamW(trainable, lr: 1e-2, weight_decay: 0);
        for (var i = 0; i < steps; i++)
        {
            using var scope = torch.NewDisposeScope();
            var ids = torch.tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, new long[] { 1, 8 });
            var logits = model.forward(ids.narrow(1, 0, 7));
            var loss = torch.nn.functional.cross_entropy(logits.reshape(7, -1), ids.narrow(1, 1, 7).reshape(7));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
    }

    [Fact]
    public void NewAdapterChangesNothingAndOnlyAdapterWeightsTrain()
    {
        using var model = Models.Random(31);
        var before = Logits(model);
        var count = LoraAdapters.Attach(model, LoraConfig.Default with { Rank = 4 });
        Assert.Equal(2 * 7, count);
        Assert.Equal(before, Logits(model));
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.Equal(2 * 7 * 2, trainable.Count);
        Assert.All(trainable, n => Assert.Matches(@"\.lora_[AB]\.weight$", n));
        var frozen = model.state_dict()["model.layers.0.self_attn.q_proj.weight"].data<float>().ToArray();
        Train(model, 5);
        Assert.NotEqual(before, Logits(model));
        Assert.Equal(frozen, model.state_dict()["model.layers.0.self_attn.q_proj.weight"].data<float>().ToArray());
    }

    [Fact]
    public void MergedAdapterGivesTheSameLogitsAsBasePlusAdapter()
    {
        using var model = Models.Random(32);
        LoraAdapters.Attach(model, LoraConfig.Default with { Rank = 4, Alpha = 8 });
        Train(model, 5);
        var withAdapter = Logits(model);
        LoraAdapters.Merge(model);
        Assert.DoesNotContain(model.named_parameters(), p => p.name.Contains("lora_"));
        Models.AssertClose(withAdapter, Logits(model), 1e-4, "merged vs adapter");
    }

    [Fact]
    public void AdapterSavedInPeftLayoutLoadsOntoAFreshBase()
    {
        using var dir = new TempDir();
        using var baseDir = new TempDir();
        using var model = Models.Random(33);
        Checkpoint.Save(model, baseDir.Path);
        var config = LoraConfig.Default with { Rank = 2, TargetModules = new[] { "q_proj", "v_proj" } };
        LoraAdapters.Attach(model, config);
        Train(model, 5);
        LoraAdapters.Save(model, config, dir.Path, baseModel: baseDir.Path);

        using (var file = SafeTensorsFile.Open(Path.Combine(dir.Path, "adapter_model.safetensors")))
        {
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", file.Tensors.Keys);
            Assert.Equal(new long[] { 2, 64 }, file.Tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].Shape);
            Assert.Equal(2 * 2 * 2, file.Tensors.Count);
        }
        Assert.Contains("\"peft_type\": \"LORA\"", File.ReadAllText(Path.Combine(dir.Path, "adapter_config.json")));

        using var fresh = Checkpoint.Load(baseDir.Path);
        LoraAdapters.Load(fresh, dir.Path);
        Assert.Equal(Logits(model), Logits(fresh));
    }
}
