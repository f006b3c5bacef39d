using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineRl.Model;

/// <summary>Which scalar heads a model carries besides the LM head.</summary>
[Flags]
public enum ModelHeads
{
    /// <summary>Only the language-model head.</summary>
    None = 0,
    /// <summary>A scalar value head per token ("value_head"), the PPO critic.</summary>
    Value = 1,
    /// <summary>A scalar reward head ("score", as Hugging Face sequence classifiers name it).</summary>
    Reward = 2,
}

/// <summary>
/// Shape of a decoder-only transformer of the Llama / Qwen2 family, read from and written to a
/// Hugging Face style config.json.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>"llama" or "qwen2" (Hugging Face model_type).</summary>
    public string ModelType { get; init; } = "qwen2";
    /// <summary>Vocabulary size (rows of the embedding).</summary>
    public int VocabSize { get; init; }
    /// <summary>Width of the residual stream.</summary>
    public int HiddenSize { get; init; }
    /// <summary>Width of the SwiGLU MLP.</summary>
    public int IntermediateSize { get; init; }
    /// <summary>Number of transformer blocks.</summary>
    public int NumLayers { get; init; }
    /// <summary>Query heads.</summary>
    public int NumHeads { get; init; }
    /// <summary>Key/value heads (fewer than query heads: grouped-query attention).</summary>
    public int NumKvHeads { get; init; }
    /// <summary>Per-head width; hidden_size / num_heads unless the checkpoint says otherwise.</summary>
    public int HeadDim { get; init; }
    /// <summary>Rotary embedding base.</summary>
    public double RopeTheta { get; init; } = 10000;
    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>The LM head reuses the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Biases on the q/k/v projections (always on in Qwen2).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Longest sequence the model is meant for.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary>Begin-of-sequence token, if any.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence token, if any.</summary>
    public int? EosTokenId { get; init; }
    /// <summary>Element type of the weights on disk ("float32", "bfloat16", "float16").</summary>
    public string TorchDtype { get; init; } = "float32";
    /// <summary>Extra scalar heads.</summary>
    public ModelHeads Heads { get; init; }

    /// <summary>Query heads per key/value head.</summary>
    public int GroupSize => NumHeads / NumKvHeads;

    /// <summary>Throws an <see cref="InvalidDataException"/> naming the first inconsistent field.</summary>
    public ModelConfig Validate()
    {
        void Require(bool ok, string field, string why)
        {
            if (!ok) throw new InvalidDataException($"config field '{field}': {why}");
        }
        Require(ModelType is "llama" or "qwen2", "model_type", $"'{ModelType}' is not supported (supported: llama, qwen2)");
        Require(VocabSize > 0, "vocab_size", "must be positive");
        Require(HiddenSize > 0, "hidden_size", "must be positive");
        Require(IntermediateSize > 0, "intermediate_size", "must be positive");
        Require(NumLayers > 0, "num_hidden_layers", "must be positive");
        Require(NumHeads > 0, "num_attention_heads", "must be positive");
        Require(NumKvHeads > 0 && NumHeads % NumKvHeads == 0, "num_key_value_heads", $"must divide num_attention_heads ({NumHeads})");
        Require(HeadDim > 0 && HeadDim % 2 == 0, "head_dim", "must be a positive even number");
        Require(RopeTheta > 0, "rope_theta", "must be positive");
        Require(RmsNormEps > 0, "rms_norm_eps", "must be positive");
        Require(TorchDtype is "float32" or "bfloat16" or "float16", "torch_dtype", $"'{TorchDtype}' is not supported");
        return this;
    }

    /// <summary>The element type named by <see cref="TorchDtype"/>.</summary>
    public ScalarType WeightType => TorchDtype switch
    {
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>PyTorch's name of an element type ("float32", "bfloat16", "int64", ...), as config.json's torch_dtype writes it.</summary>
    public static string DtypeName(ScalarType type) => type switch
    {
        ScalarType.Float64 => "float64",
        ScalarType.Float32 => "float32",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Int64 => "int64",
        ScalarType.Int32 => "int32",
        ScalarType.Int16 => "int16",
        ScalarType.Int8 => "int8",
        ScalarType.Byte => "uint8",
        ScalarType.Bool => "bool",
        _ => type.ToString().ToLowerInvariant(),
    };

    /// <summary>Reads a Hugging Face config.json; errors name the file and the field.</summary>
    public static ModelConfig Load(string path)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException("empty document");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{path}: not a JSON object ({e.Message})", e);
        }
        try
        {
            return FromJson(root);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Builds a config from a parsed config.json object.</summary>
    public static ModelConfig FromJson(JsonObject root)
    {
        T Get<T>(string field, T fallback, bool required = false)
        {
            if (!root.TryGetPropertyValue(field, out var node) || node is null)
                return required ? throw new InvalidDataException($"config field '{field}' is missing") : fallback;
            try { return node.GetValue<T>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                throw new InvalidDataException($"config field '{field}': expected {typeof(T).Name}, got {node.ToJsonString()}");
            }
        }
        if (root.TryGetPropertyValue("rope_scaling", out var scaling) && scaling is not null)
            throw new InvalidDataException("config field 'rope_scaling': RoPE scaling is not supported yet");
        var modelType = Get("model_type", "", required: true);
        var hidden = Get("hidden_size", 0, required: true);
        var heads = Get("num_attention_heads", 0, required: true);
        int? OptionalTokenId(string field)
        {
            if (!root.TryGetPropertyValue(field, out var node) || node is null) return null;
            // Some checkpoints list several end tokens; the first is the canonical one.
            if (node is JsonArray list) node = list.FirstOrDefault();
            try { return node?.GetValue<int>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                throw new InvalidDataException($"config field '{field}': expected a token id, got {node!.ToJsonString()}");
            }
        }
        var extraHeads = Get("onlinerl_heads", "None");
        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = Get("vocab_size", 0, required: true),
            HiddenSize = hidden,
            IntermediateSize = Get("intermediate_size", 0, required: true),
            NumLayers = Get("num_hidden_layers", 0, required: true),
            NumHeads = heads,
            NumKvHeads = Get("num_key_value_heads", heads),
            HeadDim = Get("head_dim", heads > 0 ? hidden / heads : 0),
            RopeTheta = Get("rope_theta", 10000.0),
            RmsNormEps = Get("rms_norm_eps", 1e-6),
            TieWordEmbeddings = Get("tie_word_embeddings", false),
            AttentionBias = modelType == "qwen2" || Get("attention_bias", false),
            MaxPositionEmbeddings = Get("max_position_embeddings", 2048),
            BosTokenId = OptionalTokenId("bos_token_id"),
            EosTokenId = OptionalTokenId("eos_token_id"),
            TorchDtype = Get("torch_dtype", "float32"),
            Heads = Enum.TryParse<ModelHeads>(extraHeads, ignoreCase: true, out var parsed)
                ? parsed
                : throw new InvalidDataException($"config field 'onlinerl_heads': '{extraHeads}' is not None, Value, Reward or 'Value, Reward'"),
        }.Validate();
    }

    /// <summary>The config.json text (Hugging Face field names).</summary>
    public string ToJson()
    {
        var root = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKvHeads,
            ["head_dim"] = HeadDim,
            ["rope_theta"] = RopeTheta,
            ["rms_norm_eps"] = RmsNormEps,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_bias"] = AttentionBias,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["torch_dtype"] = TorchDtype,
            ["hidden_act"] = "silu",
        };
        if (BosTokenId is { } bos) root["bos_token_id"] = bos;
        if (EosTokenId is { } eos) root["eos_token_id"] = eos;
        if (Heads != ModelHeads.None) root["onlinerl_heads"] = Heads.ToString();
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
