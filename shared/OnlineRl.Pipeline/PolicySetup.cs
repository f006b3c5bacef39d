using OnlineRl.Model;
using OnlineRl.Rewards;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineRl.Pipeline;

/// <summary>The prompts of a run: an endless training stream and a fixed held-out set.</summary>
public sealed class TaskSource
{
    private readonly Func<long, TaskItem> trainingItem;

    private TaskSource(Func<long, TaskItem> trainingItem, IReadOnlyList<TaskItem> heldOut, WeightedReward reward)
    {
        this.trainingItem = trainingItem;
        HeldOut = heldOut;
        Reward = reward;
    }

    /// <summary>Held-out problems for evaluation, never used for training.</summary>
    public IReadOnlyList<TaskItem> HeldOut { get; }

    /// <summary>The reward of this task.</summary>
    public WeightedReward Reward { get; }

    /// <summary>Training problem number <paramref name="index"/> (cycling through a finite dataset).</summary>
    public TaskItem Training(long index) => trainingItem(index);

    /// <summary>Builds the source named by <paramref name="config"/>; bad dataset lines are reported to <paramref name="log"/>.</summary>
    public static TaskSource Create(TaskSection config, long seed, Action<string>? log = null)
    {
        if (config.Kind == "addition")
        {
            var task = new AdditionTask(config.MaxDigits, seed);
            // Held-out problems are items 0..EvalSize-1; training draws from far beyond them.
            var heldOut = task.Items(0, config.EvalSize).ToList();
            var exact = new WeightedReward(new (IRewardFunction, double)[] { (new ExactAnswerReward(), 1.0) });
            return new TaskSource(i => task.Item(1_000_000 + i), heldOut, exact);
        }
        var dataset = new JsonlDataset(config.Path, badLines: config.BadLines == "skip" ? BadLinePolicy.Skip : BadLinePolicy.Reject);
        List<TaskItem> items;
        try
        {
            items = dataset.Read().ToList();
        }
        catch (FileNotFoundException)
        {
            throw new ConfigException($"task.path: dataset not found: {config.Path}");
        }
        catch (InvalidDataException e)
        {
            throw new ConfigException($"task.path: bad line {e.Message} (task.bad_lines is reject; set it to skip to leave bad lines out)");
        }
        foreach (var error in dataset.Errors) log?.Invoke($"skipped bad dataset line {error}");
        if (dataset.Errors.Count > 0) log?.Invoke($"skipped {dataset.Errors.Count} bad lines of {config.Path} (task.bad_lines: skip)");
        var evalCount = Math.Min(config.EvalSize, items.Count / 2);
        var training = items.Skip(evalCount).ToList();
        if (training.Count == 0) throw new ConfigException($"task.path {config.Path}: no usable training items");
        var numeric = new WeightedReward(new (IRewardFunction, double)[]
        {
            (new NumericAnswerReward(), 1.0), (new FormatReward(@"####\s*-?[\d,.]+", "format"), 0.1),
        });
        return new TaskSource(i => training[(int)(i % training.Count)], items.Take(evalCount).ToList(), numeric);
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
