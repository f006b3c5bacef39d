using OnlineRl.Model;
using OnlineRl.Rewards;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineRl.Pipeline;

/// <summary>The configuration's task section turned into OnlineRl.Rewards' <see cref="TaskSource"/>, which knows no configuration.</summary>
public static class TaskSourceConfig
{
    extension(TaskSource)
    {
        /// <summary>
        /// The task source <paramref name="task"/> names; dataset problems become <see cref="ConfigException"/>s naming
        /// the key, skipped bad lines go to <paramref name="log"/>.
        /// </summary>
        public static TaskSource Create(TaskSection task, long seed, Action<string>? log = null)
        {
            if (task.Kind == "addition") return TaskSource.Addition(task.MaxDigits, seed, task.EvalSize);
            try
            {
                return TaskSource.Jsonl(task.Path, task.BadLines == "skip" ? BadLinePolicy.Skip : BadLinePolicy.Reject, task.EvalSize, log);
            }
            catch (FileNotFoundException)
            {
                throw new ConfigException($"task.path: dataset not found: {task.Path}");
            }
            catch (InvalidDataException e)
            {
                // The same exception says "no usable item" too, so the hint states the policy rather than blaming a line.
                var hint = task.BadLines == "skip" ? "" : " (task.bad_lines is reject: a bad line stops the run; skip leaves bad lines out)";
                throw new ConfigException($"task.path: {e.Message}{hint}");
            }
        }
    }
}

/// <summary>Creates the policy model and its tokenizer from a run configuration.</summary>
public static class PolicySetup
{
    /// <summary>The tokenizer: characters for the addition task, the checkpoint's own otherwise, bytes for new models.</summary>
    public static ITokenizer Tokenizer(RunConfig config)
    {
        if (config.Task.Kind == "addition" && config.Model.Checkpoint.Length == 0) return new CharTokenizer(AdditionTask.Alphabet);
        if (config.Model.Checkpoint.Length > 0) return ModelTokenizers.Load(config.Model.Checkpoint);
        return new ByteTokenizer();
    }

    /// <summary>A model as configured: loaded from the checkpoint, or new with the configured size.</summary>
    public static TransformerModel Create(RunConfig config, ITokenizer tokenizer, ModelHeads heads, Device device)
    {
        if (config.Model.Checkpoint.Length > 0)
        {
            var loaded = Checkpoint.Load(config.Model.Checkpoint, ScalarType.Float32, device, heads);
            if (loaded.Config.VocabSize < tokenizer.VocabSize)
            {
                loaded.Dispose();
                throw new ConfigException($"model.checkpoint {config.Model.Checkpoint}: vocabulary of {loaded.Config.VocabSize} is smaller than the tokenizer's {tokenizer.VocabSize}");
            }
            return loaded;
        }
        var m = config.Model;
        var modelConfig = new ModelConfig
        {
            ModelType = "llama", VocabSize = tokenizer.VocabSize, HiddenSize = m.HiddenSize, IntermediateSize = m.IntermediateSize,
            NumLayers = m.Layers, NumHeads = m.Heads, NumKvHeads = m.KvHeads, HeadDim = m.HiddenSize / m.Heads,
            MaxPositionEmbeddings = 256, TieWordEmbeddings = true, AttentionBias = false, Heads = heads,
            BosTokenId = tokenizer.BosId, EosTokenId = tokenizer.EosId,
        };
        return new TransformerModel(modelConfig, ScalarType.Float32, device);
    }

    /// <summary>A second model with the same architecture and weights (a generator's copy, the reference policy).</summary>
    public static TransformerModel Copy(TransformerModel source, ModelHeads? heads = null)
    {
        var copy = new TransformerModel(source.Config with { Heads = heads ?? source.Config.Heads }, source.DType, source.Device);
        var state = source.state_dict();
        copy.load_state_dict(state.Where(kv => copy.state_dict().ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value), strict: false);
        return copy;
    }
}
