using System.Globalization;
using OnlineRl.Model;
using OnlineRl.Pipeline;
using OnlineRl.Rewards;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Training;

namespace OnlineRl.Cli;

/// <summary>`tokenize`, `init-model`, `generate` and `sft`: tools around the policy model.</summary>
internal static class ModelCommands
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private static ITokenizer TokenizerFrom(Options options)
    {
        var spec = options.String("tokenizer", "");
        if (spec.Length == 0) throw new UsageException("--tokenizer is required: a model or tokenizer directory, 'char:ALPHABET' or 'byte'");
        if (spec == "byte") return new ByteTokenizer();
        if (spec.StartsWith("char:", StringComparison.Ordinal)) return new CharTokenizer(spec[5..]);
        if (!Directory.Exists(spec)) throw new UsageException($"--tokenizer: directory not found: {spec}");
        return ModelTokenizers.Load(spec);
    }

    /// <summary>Text (or each line of a file) to token ids, one line of ids per input.</summary>
    public static int Tokenize(Options options)
    {
        var tokenizer = TokenizerFrom(options);
        var text = options.String("text", "");
        var file = options.String("file", "");
        var decode = options.Flag("decode");
        options.RejectUnknown();
        if ((text.Length == 0) == (file.Length == 0)) throw new UsageException("give exactly one of --text TEXT or --file FILE");
        if (file.Length > 0 && !File.Exists(file)) throw new UsageException($"--file: not found: {file}");
        var inputs = text.Length > 0 ? new[] { text } : File.ReadLines(file);
        foreach (var input in inputs)
        {
            if (decode)
            {
                var ids = input.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, Invariant)).ToArray();
                Console.WriteLine(tokenizer.Decode(ids));
            }
            else
            {
                Console.WriteLine(string.Join(' ', tokenizer.Encode(input)));
            }
        }
        return 0;
    }

    /// <summary>A randomly initialised model of any size, written as a Hugging Face style checkpoint.</summary>
    public static int InitModel(Options options)
    {
        var output = options.String("out", "");
        var tokenizerSpec = options.String("tokenizer", "byte");
        var hidden = options.Int("hidden-size", 256);
        var layers = options.Int("layers", 4);
        var heads = options.Int("heads", 4);
        var kvHeads = options.Int("kv-heads", heads);
        var intermediate = options.Int("intermediate-size", hidden * 8 / 3 / 64 * 64 + 64);
        var maxPositions = options.Int("max-positions", 1024);
        var dtype = options.String("dtype", "float32");
        var seed = options.Long("seed", 0);
        var qkvBias = options.Flag("qkv-bias");
        var untied = options.Flag("untied");
        options.RejectUnknown();
        if (output.Length == 0) throw new UsageException("--out DIR is required");
        var tokenizer = tokenizerSpec == "byte" ? new ByteTokenizer()
            : tokenizerSpec.StartsWith("char:", StringComparison.Ordinal) ? new CharTokenizer(tokenizerSpec[5..])
            : ModelTokenizers.Load(tokenizerSpec);
        var config = new ModelConfig
        {
            ModelType = qkvBias ? "qwen2" : "llama", VocabSize = tokenizer.VocabSize, HiddenSize = hidden, IntermediateSize = intermediate,
            NumLayers = layers, NumHeads = heads, NumKvHeads = kvHeads, HeadDim = heads > 0 ? hidden / heads : 0, AttentionBias = qkvBias,
            TieWordEmbeddings = !untied, MaxPositionEmbeddings = maxPositions, BosTokenId = tokenizer.BosId, EosTokenId = tokenizer.EosId,
            TorchDtype = dtype,
        };
        try
        {
            config.Validate();
        }
        catch (InvalidDataException e)
        {
            throw new UsageException(e.Message);
        }
        torch.manual_seed(seed);
        using var model = new TransformerModel(config, ScalarType.Float32);
        Checkpoint.Save(model, output, dtype: config.WeightType);
        ModelTokenizers.SaveWithModel(tokenizer, tokenizerSpec, output);
        Console.WriteLine($"wrote {output}: {config.ModelType}, {model.ParameterCount:N0} parameters ({config.TorchDtype}), vocabulary {config.VocabSize}");
        return 0;
    }

    /// <summary>Completions of a prompt with per-token log-probs.</summary>
    public static int Generate(Options options)
    {
        var modelDir = options.String("model", "");
        var prompt = options.String("prompt", "");
        var chat = options.Flag("chat");
        var sampling = new SamplingOptions
        {
            CompletionsPerPrompt = options.Int("n", 1), MaxNewTokens = options.Int("max-new-tokens", 64),
            Temperature = options.Double("temperature", 1.0), TopK = options.Int("top-k", 0), TopP = options.Double("top-p", 1.0),
            Seed = options.Long("seed", 0),
        };
        var device = Devices.Parse(options.String("device", "cpu"));
        options.RejectUnknown();
        if (modelDir.Length == 0 || prompt.Length == 0) throw new UsageException("--model DIR and --prompt TEXT are required");
        var tokenizer = ModelTokenizers.Load(modelDir);
        using var model = Checkpoint.Load(modelDir, ScalarType.Float32, device);
        var ids = chat && tokenizer is ByteLevelBpeTokenizer bpe
            ? QwenChatTemplate.Encode(bpe, new[] { ChatMessage.User(prompt) }, addGenerationPrompt: true)
            : tokenizer.Encode(prompt);
        var stops = new[] { tokenizer.EosId, model.Config.EosTokenId, tokenizer.TokenToId("<|im_end|>") }.OfType<int>().Distinct().ToArray();
        var completions = Sampler.Generate(model, new[] { ids }, sampling with { StopTokenIds = stops });
        foreach (var (c, i) in completions.Select((c, i) => (c, i)))
        {
            Console.WriteLine($"--- completion {i + 1} ({c.TokenIds.Length} tokens, {c.Finish.ToString().ToLowerInvariant()}, log-prob {c.LogProbs.Sum():F3})");
            Console.WriteLine(tokenizer.Decode(c.TokenIds, skipSpecialTokens: true));
            Console.WriteLine("ids:      " + string.Join(' ', c.TokenIds));
            Console.WriteLine("logprobs: " + string.Join(' ', c.LogProbs.Select(l => l.ToString("F4", Invariant))));
        }
        return 0;
    }

    /// <summary>Supervised fine-tuning of a new small model on the addition task, or of a checkpoint on prompt/answer JSONL.</summary>
    public static int Sft(Options options)
    {
        var output = options.String("out", "");
        var dataset = options.String("data", "");
        var modelDir = options.String("model", "");
        var sft = new SftOptions
        {
            Steps = options.Int("steps", 200), LearningRate = options.Double("lr", 1e-3), ExamplesPerStep = options.Int("batch", 256),
            RowLength = options.Int("row-length", 128), Seed = options.Long("seed", 1), WarmupSteps = options.Int("warmup", 20),
        };
        var loraRank = options.Int("lora-rank", 0);
        options.RejectUnknown();
        if (output.Length == 0) throw new UsageException("--out DIR is required");
        torch.manual_seed(sft.Seed);
        var config = RunConfig.Load(null, new Dictionary<string, string>
        {
            ["model.checkpoint"] = modelDir, ["task.kind"] = dataset.Length > 0 ? "jsonl" : "addition", ["task.path"] = dataset,
        });
        var tokenizer = PolicySetup.Tokenizer(config);
        var progress = ConsoleProgress.ForConsole();
        var tasks = TaskSource.Create(config.Task, sft.Seed, progress.Line);
        using var model = PolicySetup.Create(config, tokenizer, ModelHeads.None, CPU);
        if (loraRank > 0) LoraAdapters.Attach(model, LoraConfig.Default with { Rank = loraRank });
        var eos = tokenizer.EosId is { } e ? new[] { e } : Array.Empty<int>();
        var examples = Enumerable.Range(0, 20_000).Select(i => tasks.Training(i))
            .Select(t => new SftExample(tokenizer.Encode(t.Prompt), tokenizer.Encode(t.Answer).Concat(eos).ToArray())).ToList();
        progress.Line($"SFT: {model.ParameterCount:N0} parameters, {examples.Count} examples, {sft.Steps} steps");
        progress.Begin("step", sft.Steps);
        SupervisedFineTuning.Train(model, examples, sft, s =>
            progress.Report(s.Step, $"loss {s.Loss:F4}  lr {s.LearningRate:E2}  grad-norm {s.GradNorm:F2}  {s.TokensPerSecond:F0} tok/s"));
        progress.End();
        if (loraRank > 0) LoraAdapters.Merge(model);
        var accuracy = Evaluation.GreedyAccuracy(model, tasks.HeldOut.Select(t => tokenizer.Encode(t.Prompt)).ToList(),
            tasks.HeldOut.Select(t => t.Answer).ToList(), x => tokenizer.Decode(x.ToArray(), skipSpecialTokens: true), 16, eos);
        Checkpoint.Save(model, output);
        ModelTokenizers.SaveWithModel(tokenizer, modelDir.Length > 0 ? modelDir : null, output);
        progress.Line($"held-out greedy accuracy {accuracy:P1} on {tasks.HeldOut.Count} problems; wrote {output}");
        return 0;
    }
}

/// <summary>`train-rm`: a reward model (Bradley-Terry) from preference pairs.</summary>
internal static class RewardModelCommand
{
    /// <summary>
    /// Trains a reward model on JSONL preference pairs ({"prompt", "chosen", "rejected"}) starting from --model,
    /// or, without --data, on pairs made from the addition task (correct vs wrong answer) for a new small model.
    /// </summary>
    public static int Run(Options options)
    {
        var output = options.String("out", "");
        var data = options.String("data", "");
        var modelDir = options.String("model", "");
        var rm = new RewardModelOptions
        {
            Steps = options.Int("steps", 200), LearningRate = options.Double("lr", 3e-4), PairsPerStep = options.Int("batch", 64),
            Seed = options.Long("seed", 1),
        };
        options.RejectUnknown();
        if (output.Length == 0) throw new UsageException("--out DIR is required");
        if (data.Length > 0 && !File.Exists(data)) throw new UsageException($"--data: not found: {data}");
        torch.manual_seed(rm.Seed);
        var config = RunConfig.Load(null, new Dictionary<string, string> { ["model.checkpoint"] = modelDir });
        var tokenizer = PolicySetup.Tokenizer(config);
        var pairs = data.Length > 0 ? ReadPairs(data, tokenizer) : AdditionPairs(tokenizer, 20_000, seed: 0);
        var heldOut = data.Length > 0 ? pairs.TakeLast(Math.Min(500, pairs.Count / 10)).ToList() : AdditionPairs(tokenizer, 500, seed: 99);
        var training = data.Length > 0 ? pairs.Take(pairs.Count - heldOut.Count).ToList() : pairs;
        using var model = PolicySetup.Create(config, tokenizer, ModelHeads.Reward, CPU);
        var progress = ConsoleProgress.ForConsole();
        progress.Line($"reward model: {model.ParameterCount:N0} parameters, {training.Count} training pairs, {heldOut.Count} held out");
        progress.Begin("step", rm.Steps);
        RewardModel.Train(model, training, rm, (step, loss, accuracy) => progress.Report(step, $"loss {loss:F4}  batch accuracy {accuracy:P0}"));
        progress.End();
        var heldOutAccuracy = RewardModel.PairAccuracy(model, heldOut);
        Checkpoint.Save(model, output);
        ModelTokenizers.SaveWithModel(tokenizer, modelDir.Length > 0 ? modelDir : null, output);
        progress.Line($"held-out pair accuracy {heldOutAccuracy:P1}; wrote {output}");
        return 0;
    }

    private static List<PreferencePair> ReadPairs(string path, ITokenizer tokenizer)
    {
        var pairs = new List<PreferencePair>();
        var line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(text);
                string Field(string name) => doc.RootElement.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String
                    ? v.GetString()! : throw new InvalidDataException($"field '{name}' is missing or not a string");
                pairs.Add(new PreferencePair(tokenizer.Encode(Field("prompt")), tokenizer.Encode(Field("chosen")), tokenizer.Encode(Field("rejected"))));
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException)
            {
                Console.Error.WriteLine($"{path}:{line}: skipped: {e.Message}");
            }
        }
        if (pairs.Count < 2) throw new UsageException($"--data {path}: fewer than 2 usable preference pairs");
        return pairs;
    }

    /// <summary>"a+b=" prompts with the correct sum preferred over a near miss.</summary>
    internal static List<PreferencePair> AdditionPairs(ITokenizer tokenizer, int count, long seed)
    {
        var task = new AdditionTask(3, seed);
        var random = new Random((int)seed);
        var eos = tokenizer.EosId is { } e ? new[] { e } : Array.Empty<int>();
        return task.Items(0, count).Select(item =>
        {
            var answer = long.Parse(item.Answer, Invariant);
            var wrong = answer + (random.Next(2) == 0 ? -1 : 1) * random.Next(1, 20);
            return new PreferencePair(tokenizer.Encode(item.Prompt), tokenizer.Encode(item.Answer).Concat(eos).ToArray(),
                tokenizer.Encode(Math.Abs(wrong).ToString(Invariant)).Concat(eos).ToArray());
        }).ToList();
    }

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
}
