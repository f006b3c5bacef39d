using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineRl.Model;

/// <summary>
/// Hugging Face style checkpoint directories: config.json plus model.safetensors, or shards listed in
/// model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: file}}).
/// </summary>
public static class Checkpoint
{
    private const string SingleFile = "model.safetensors";
    private const string IndexFile = "model.safetensors.index.json";

    /// <summary>
    /// Loads the model in <paramref name="directory"/>, converting weights to <paramref name="dtype"/> (default:
    /// the config's) on <paramref name="device"/>. <paramref name="heads"/> adds scalar heads that the
    /// checkpoint may lack (they keep their fresh initialisation).
    /// </summary>
    public static TransformerModel Load(string directory, ScalarType? dtype = null, Device? device = null, ModelHeads heads = ModelHeads.None)
    {
        var configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"no config.json in checkpoint directory {directory}", configPath);
        var config = ModelConfig.Load(configPath);
        config = config with { Heads = config.Heads | heads };
        var model = new TransformerModel(config, dtype, device);
        try
        {
            LoadWeights(model, directory, optional: name => HeadOf(name) is var head && head != ModelHeads.None && heads.HasFlag(head));
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    private static ModelHeads HeadOf(string name) =>
        name.StartsWith("value_head.", StringComparison.Ordinal) ? ModelHeads.Value :
        name.StartsWith("score.", StringComparison.Ordinal) ? ModelHeads.Reward : ModelHeads.None;

    /// <summary>The tensor files of a checkpoint directory and which tensor lives in which file.</summary>
    public static Dictionary<string, string> WeightMap(string directory)
    {
        var index = Path.Combine(directory, IndexFile);
        if (File.Exists(index))
        {
            JsonObject map;
            try
            {
                map = JsonNode.Parse(File.ReadAllText(index))?["weight_map"]?.AsObject()
                      ?? throw new InvalidDataException("field 'weight_map' is missing");
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new InvalidDataException($"{index}: {e.Message}", e);
            }
            return map.ToDictionary(kv => kv.Key, kv => Path.Combine(directory, kv.Value!.GetValue<string>()));
        }
        var single = Path.Combine(directory, SingleFile);
        if (!File.Exists(single))
            throw new FileNotFoundException($"checkpoint directory {directory} has neither {SingleFile} nor {IndexFile}", single);
        using var file = SafeTensorsFile.Open(single);
        return file.Tensors.Keys.ToDictionary(k => k, _ => single);
    }

    /// <summary>
    /// Copies every tensor of <paramref name="model"/>'s state dict from the checkpoint, converting type and
    /// device. A tensor the checkpoint lacks is an error unless <paramref name="optional"/> says otherwise;
    /// a tensor the model lacks is an error too (a different architecture), except a tied LM head.
    /// </summary>
    public static void LoadWeights(TransformerModel model, string directory, Func<string, bool>? optional = null)
    {
        var map = WeightMap(directory);
        var state = model.state_dict();
        var missing = state.Keys.Where(k => !map.ContainsKey(k) && !(optional?.Invoke(k) ?? false)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"checkpoint {directory} lacks {missing.Count} tensor(s) the model needs, e.g. '{string.Join("', '", missing.Take(5))}'");
        var unexpected = map.Keys.Where(k => !state.ContainsKey(k) && !(k == "lm_head.weight" && model.Config.TieWordEmbeddings)
                                             && !k.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)).ToList();
        if (unexpected.Count > 0)
            throw new InvalidDataException($"checkpoint {directory} has {unexpected.Count} tensor(s) this architecture does not, e.g. '{string.Join("', '", unexpected.Take(5))}'");
        using var _ = torch.no_grad();
        foreach (var group in state.Where(kv => map.ContainsKey(kv.Key)).GroupBy(kv => map[kv.Key]))
        {
            using var file = SafeTensorsFile.Open(group.Key);
            foreach (var (name, target) in group)
            {
                if (!file.Tensors.TryGetValue(name, out var info))
                    throw new InvalidDataException($"{file.Path}: the index says it holds '{name}', but it does not");
                if (!info.Shape.SequenceEqual(target.shape))
                    throw new InvalidDataException($"{file.Path}: '{name}' has shape [{string.Join(", ", info.Shape)}], the model expects [{string.Join(", ", target.shape)}]");
                using var source = file.Load(name, target.dtype, target.device);
                target.copy_(source);
            }
        }
    }

    /// <summary>
    /// Writes config.json and the weights into <paramref name="directory"/>: one model.safetensors, or shards
    /// of at most <paramref name="maxShardBytes"/> with an index when that is positive.
    /// </summary>
    public static void Save(TransformerModel model, string directory, long maxShardBytes = 0, ScalarType? dtype = null)
    {
        Directory.CreateDirectory(directory);
        var config = model.Config with { TorchDtype = ModelConfig.DtypeName(dtype ?? model.DType) };
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJson());
        var tensors = model.state_dict().ToList();
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        Tensor Convert(Tensor t) => dtype is { } d && torch.is_floating_point(t.dtype) && t.dtype != d ? t.to(d) : t;

        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long current = 0;
        foreach (var entry in tensors)
        {
            var size = entry.Value.numel() * (dtype ?? entry.Value.dtype).ElementSize();
            if (maxShardBytes > 0 && current > 0 && current + size > maxShardBytes)
            {
                shards.Add(new());
                current = 0;
            }
            shards[^1].Add(entry);
            current += size;
        }
        foreach (var stale in Directory.GetFiles(directory, "model*.safetensors*")) File.Delete(stale);
        if (maxShardBytes <= 0 || shards.Count == 1)
        {
            using var scope = torch.NewDisposeScope();
            SafeTensorsFile.Save(Path.Combine(directory, SingleFile), tensors.Select(kv => KeyValuePair.Create(kv.Key, Convert(kv.Value))), metadata);
            return;
        }
        var weightMap = new JsonObject();
        long total = 0;
        for (var i = 0; i < shards.Count; i++)
        {
            var fileName = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            using var scope = torch.NewDisposeScope();
            var converted = shards[i].Select(kv => KeyValuePair.Create(kv.Key, Convert(kv.Value))).ToList();
            SafeTensorsFile.Save(Path.Combine(directory, fileName), converted, metadata);
            foreach (var (name, t) in converted)
            {
                weightMap[name] = fileName;
                total += t.NumberOfElements * t.ElementSize;
            }
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(directory, IndexFile), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
