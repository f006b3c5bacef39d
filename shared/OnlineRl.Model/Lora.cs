using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp.Modules;
using static OnlineRl.Model.ParameterFactory;

namespace OnlineRl.Model;

/// <summary>LoRA hyper-parameters, as in a PEFT adapter_config.json.</summary>
/// <param name="Rank">r, the inner width of the update B A.</param>
/// <param name="Alpha">lora_alpha; the update is scaled by alpha / r.</param>
/// <param name="Dropout">lora_dropout applied to the adapter's input during training.</param>
/// <param name="TargetModules">Module names that get adapters, e.g. q_proj, v_proj, gate_proj.</param>
public sealed record LoraConfig(int Rank, double Alpha, double Dropout, IReadOnlyList<string> TargetModules)
{
    /// <summary>The usual choice: all attention and MLP projections, r = 8, alpha = 16.</summary>
    public static LoraConfig Default { get; } =
        new(8, 16, 0, new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" });

    /// <summary>alpha / r.</summary>
    public double Scaling => Alpha / Rank;

    /// <summary>adapter_config.json text in the PEFT layout.</summary>
    public string ToJson(string baseModel) => new JsonObject
    {
        ["peft_type"] = "LORA",
        ["task_type"] = "CAUSAL_LM",
        ["r"] = Rank,
        ["lora_alpha"] = Alpha,
        ["lora_dropout"] = Dropout,
        ["target_modules"] = new JsonArray(TargetModules.Select(t => (JsonNode)t).ToArray()),
        ["bias"] = "none",
        ["fan_in_fan_out"] = false,
        ["base_model_name_or_path"] = baseModel,
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Reads adapter_config.json; errors name the file and field.</summary>
    public static LoraConfig Load(string path)
    {
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            var type = root["peft_type"]?.GetValue<string>();
            if (type != "LORA") throw new InvalidDataException($"field 'peft_type' is '{type}', only LORA is supported");
            var targets = root["target_modules"] switch
            {
                JsonArray list => list.Select(t => t!.GetValue<string>()).ToArray(),
                JsonValue single => new[] { single.GetValue<string>() },
                _ => throw new InvalidDataException("field 'target_modules' is missing"),
            };
            var rank = root["r"]?.GetValue<int>() ?? throw new InvalidDataException("field 'r' is missing");
            if (rank <= 0) throw new InvalidDataException("field 'r' must be positive");
            return new LoraConfig(rank, root["lora_alpha"]?.GetValue<double>() ?? rank, root["lora_dropout"]?.GetValue<double>() ?? 0, targets);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or InvalidDataException or NullReferenceException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }
}

/// <summary>
/// A linear layer y = x W^T + b that can carry a LoRA adapter (Hu et al. 2021):
/// y = x W^T + b + dropout(x) A^T B^T * (alpha / r), with W frozen and only A, B trained. A starts
/// Kaiming-uniform and B at zero, so a new adapter does not change the output.
/// </summary>
public sealed class LoraLinear : ExplicitModule<Tensor, Tensor>
{
    private Linear? loraA;
    private Linear? loraB;
    private LoraConfig? lora;

    /// <summary>Creates the base layer (weights are initialised by the owning model).</summary>
    public LoraLinear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device? device) : base(nameof(LoraLinear))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        register_parameter("weight", weight = NewParameter(torch.zeros(new[] { outFeatures, inFeatures }, dtype, device)));
        if (hasBias) register_parameter("bias", bias = NewParameter(torch.zeros(new[] { outFeatures }, dtype, device)));
    }

    /// <summary>Input width.</summary>
    public long InFeatures { get; }
    /// <summary>Output width.</summary>
    public long OutFeatures { get; }
    /// <summary>[out, in].</summary>
    public Parameter weight { get; }
    /// <summary>[out], or null.</summary>
    public Parameter? bias { get; }
    /// <summary>True while an adapter is attached.</summary>
    public bool HasAdapter => lora is not null;

    /// <summary>Attaches a fresh adapter ("lora_A", "lora_B" children) and freezes the base weights.</summary>
    public void AttachAdapter(LoraConfig config)
    {
        if (lora is not null) throw new InvalidOperationException("this layer already has a LoRA adapter");
        var dtype = weight.dtype;
        var device = weight.device;
        register_module("lora_A", loraA = nn.Linear(InFeatures, config.Rank, hasBias: false, device, dtype));
        register_module("lora_B", loraB = nn.Linear(config.Rank, OutFeatures, hasBias: false, device, dtype));
        using (torch.no_grad()) loraB.weight.zero_();
        lora = config;
        weight.requires_grad = false;
        if (bias is not null) bias.requires_grad = false;
    }

    /// <summary>Folds the adapter into W (W += B A * alpha / r), removes it and unfreezes W.</summary>
    public void MergeAdapter()
    {
        if (lora is null || loraA is null || loraB is null) throw new InvalidOperationException("this layer has no LoRA adapter to merge");
        using (var scope = torch.NewDisposeScope())
        using (torch.no_grad())
        {
            weight.add_(loraB.weight.matmul(loraA.weight).Times(lora.Scaling), HeldScalars.One);
        }
        // TorchSharp has no public unregister; the registry is protected, so the layer removes its own children.
        _internal_submodules.Remove("lora_A");
        _internal_submodules.Remove("lora_B");
        loraA.Dispose();
        loraB.Dispose();
        loraA = loraB = null;
        lora = null;
        weight.requires_grad = true;
        if (bias is not null) bias.requires_grad = true;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var y = torch.nn.functional.linear(x, weight, bias);
        if (lora is null) return y;
        using var scope = torch.NewDisposeScope();
        var input = lora.Dropout > 0 ? torch.nn.functional.dropout(x, lora.Dropout, training) : x;
        var update = loraB!.forward(loraA!.forward(input)).Times(lora.Scaling);
        return scope.MoveToOuter(y.Plus(update));
    }
}

/// <summary>Attaching, merging, saving and loading LoRA adapters of a <see cref="TransformerModel"/>.</summary>
public static class LoraAdapters
{
    private const string PeftPrefix = "base_model.model.";

    /// <summary>Every <see cref="LoraLinear"/> below <paramref name="root"/> with its dotted name.</summary>
    private static IEnumerable<(string name, LoraLinear layer)> Layers(nn.Module root, string prefix = "")
    {
        foreach (var (name, child) in root.named_children())
        {
            if (child is LoraLinear layer) yield return (prefix + name, layer);
            foreach (var inner in Layers(child, prefix + name + ".")) yield return inner;
        }
    }

    /// <summary>Attaches adapters to every target layer and freezes everything else; returns the count.</summary>
    public static int Attach(TransformerModel model, LoraConfig config)
    {
        var layers = Layers(model).Where(l => config.TargetModules.Contains(l.name.Split('.')[^1])).ToList();
        if (layers.Count == 0)
            throw new ArgumentException($"no layer matches target_modules [{string.Join(", ", config.TargetModules)}]", nameof(config));
        foreach (var p in model.parameters()) p.requires_grad = false;
        foreach (var (_, layer) in layers) layer.AttachAdapter(config);
        return layers.Count;
    }

    /// <summary>Merges every attached adapter into its base weights and unfreezes the model.</summary>
    public static void Merge(TransformerModel model)
    {
        foreach (var (_, layer) in Layers(model).ToList())
            if (layer.HasAdapter) layer.MergeAdapter();
        foreach (var p in model.parameters()) p.requires_grad = true;
    }

    /// <summary>The adapter tensors with PEFT names (base_model.model.&lt;module&gt;.lora_A.weight).</summary>
    public static Dictionary<string, Tensor> AdapterTensors(TransformerModel model) =>
        model.named_parameters()
            .Where(p => p.name.Contains(".lora_A.", StringComparison.Ordinal) || p.name.Contains(".lora_B.", StringComparison.Ordinal))
            .ToDictionary(p => PeftPrefix + p.name, p => (Tensor)p.parameter);

    /// <summary>Writes adapter_config.json and adapter_model.safetensors into <paramref name="directory"/>.</summary>
    public static void Save(TransformerModel model, LoraConfig config, string directory, string baseModel = "")
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), config.ToJson(baseModel));
        SafeTensorsFile.Save(Path.Combine(directory, "adapter_model.safetensors"), AdapterTensors(model));
    }

    /// <summary>Attaches the adapter saved in <paramref name="directory"/> to <paramref name="model"/>.</summary>
    public static LoraConfig Load(TransformerModel model, string directory)
    {
        var config = LoraConfig.Load(Path.Combine(directory, "adapter_config.json"));
        Attach(model, config);
        using var file = SafeTensorsFile.Open(Path.Combine(directory, "adapter_model.safetensors"));
        var own = AdapterTensors(model);
        var missing = own.Keys.Where(k => !file.Tensors.ContainsKey(k)).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"{file.Path}: missing adapter tensors: {string.Join(", ", missing.Take(5))}");
        using var _ = torch.no_grad();
        foreach (var (name, target) in own)
        {
            using var source = file.Load(name, target.dtype, target.device);
            if (!source.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"{file.Path}: '{name}' has shape [{string.Join(", ", source.shape)}], the model needs [{string.Join(", ", target.shape)}] (different rank or base model?)");
            target.copy_(source);
        }
        return config;
    }
}
