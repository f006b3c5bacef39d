using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using YamlDotNet.RepresentationModel;

namespace OnlineRl.Pipeline;

/// <summary>The policy to train: a checkpoint directory, or a small model trained from scratch.</summary>
public sealed record ModelSection
{
    /// <summary>A Hugging Face style checkpoint directory; empty: a new model of the size below.</summary>
    public string Checkpoint { get; init; } = "";
    /// <summary>Width of a new model.</summary>
    public int HiddenSize { get; init; } = 128;
    /// <summary>Blocks of a new model.</summary>
    public int Layers { get; init; } = 3;
    /// <summary>Attention heads of a new model.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Key/value heads of a new model (GQA when fewer than heads).</summary>
    public int KvHeads { get; init; } = 4;
    /// <summary>MLP width of a new model.</summary>
    public int IntermediateSize { get; init; } = 512;
    /// <summary>LoRA rank; 0 trains all weights.</summary>
    public int LoraRank { get; init; }
    /// <summary>LoRA alpha.</summary>
    public double LoraAlpha { get; init; } = 16;
}

/// <summary>Where prompts come from.</summary>
public sealed record TaskSection
{
    /// <summary>"addition" (synthetic a+b=) or "jsonl" (e.g. GSM8K).</summary>
    public string Kind { get; init; } = "addition";
    /// <summary>Largest operand length of the addition task.</summary>
    public int MaxDigits { get; init; } = 3;
    /// <summary>JSONL file for kind "jsonl".</summary>
    public string Path { get; init; } = "";
    /// <summary>Fixed held-out problems for evaluation.</summary>
    public int EvalSize { get; init; } = 500;
    /// <summary>
    /// What a bad dataset line (invalid JSON, a field missing, empty or not a string, no final answer) does:
    /// "reject" stops the run with the file and line; "skip" leaves it out and logs it.
    /// </summary>
    public string BadLines { get; init; } = "reject";
    /// <summary>The feeder publishes at most this many prompts (0: endless).</summary>
    public long MaxPrompts { get; init; }
}

/// <summary>How completions are scored: the task's rule rewards, plus an optional reward model.</summary>
public sealed record RewardSection
{
    /// <summary>A reward-model checkpoint (trained by `onlinerl train-rm`); empty: rule rewards only.</summary>
    public string Model { get; init; } = "";
    /// <summary>Weight of the reward model's score added to the rule rewards.</summary>
    public double ModelWeight { get; init; } = 1.0;
    /// <summary>Keep the task's rule rewards when a reward model is used.</summary>
    public bool KeepRules { get; init; } = true;
}

/// <summary>Supervised warm start of a new model (skipped when steps is 0).</summary>
public sealed record SftSection
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 200;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Examples per step.</summary>
    public int ExamplesPerStep { get; init; } = 256;
}

/// <summary>How generators sample.</summary>
public sealed record SamplingSection
{
    /// <summary>Completions per prompt (G).</summary>
    public int GroupSize { get; init; } = 8;
    /// <summary>Temperature.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Top-k (0: off).</summary>
    public int TopK { get; init; }
    /// <summary>Top-p (1: off).</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Most new tokens per completion.</summary>
    public int MaxNewTokens { get; init; } = 6;
    /// <summary>
    /// "continuous": one running decode batch whose rows join and leave per token (a completion that ends frees its row
    /// for a waiting one); "static": batches of prompts padded to their longest completion.
    /// </summary>
    public string Batching { get; init; } = ContinuousBatching;

    /// <summary>The value of <see cref="Batching"/> that batches continuously.</summary>
    public const string ContinuousBatching = "continuous";
}

/// <summary>The learning algorithm and its hyper-parameters.</summary>
public sealed record AlgorithmSection
{
    /// <summary>"grpo", "ppo" or "dpo" (online DPO).</summary>
    public string Name { get; init; } = "grpo";
    /// <summary>
    /// Peak learning rate. 1e-4 suits GRPO and PPO on the addition task's small model; 3e-4 collapses it (each
    /// fresh Adam step moves every weight by about the rate, too far for noisy policy gradients); online DPO
    /// learns more steadily at 5e-5.
    /// </summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 20;
    /// <summary>Gradient-norm clip.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Prompts (groups) per learner step.</summary>
    public int PromptsPerStep { get; init; } = 32;
    /// <summary>Passes over each batch.</summary>
    public int Epochs { get; init; } = 1;
    /// <summary>Minibatches per pass.</summary>
    public int Minibatches { get; init; } = 1;
    /// <summary>Lower clip range of the ratio.</summary>
    public double ClipLow { get; init; } = 0.2;
    /// <summary>Upper clip range of the ratio (DAPO's clip-higher when above ClipLow).</summary>
    public double ClipHigh { get; init; } = 0.2;
    /// <summary>KL estimator to the reference policy: "k1", "k2", "k3" or "none".</summary>
    public string KlEstimator { get; init; } = "k3";
    /// <summary>KL coefficient.</summary>
    public double KlBeta { get; init; } = 0.02;
    /// <summary>"token" (DAPO), "sequence" (GRPO) or "constant" (Dr. GRPO).</summary>
    public string LossAggregation { get; init; } = "token";
    /// <summary>Divide group advantages by the group's std (GRPO) or not (Dr. GRPO).</summary>
    public bool StdNormalize { get; init; } = true;
    /// <summary>Drop groups whose rewards are all equal (DAPO dynamic sampling).</summary>
    public bool FilterEqualGroups { get; init; }
    /// <summary>Truncation of the importance weight for stale samples.</summary>
    public double MaxImportanceWeight { get; init; } = 2.0;
    /// <summary>DPO beta.</summary>
    public double DpoBeta { get; init; } = 0.1;
    /// <summary>DPO label smoothing (conservative DPO).</summary>
    public double DpoLabelSmoothing { get; init; }
    /// <summary>"sigmoid" (DPO) or "ipo".</summary>
    public string DpoLoss { get; init; } = "sigmoid";
    /// <summary>DPO without a reference model.</summary>
    public bool DpoReferenceFree { get; init; }
    /// <summary>
    /// α of RPO's SFT term α·NLL(chosen) on top of online DPO (Pang et al. 2024). 1 by default: measured from the main
    /// job's SFT start at lr 1e-4, online DPO alone drifted down and oscillated (25% -> 8-22%) in ours and in the plain
    /// PyTorch reference alike, with the term it held and rose (25% -> 29% in 150 updates); 0 gives plain DPO.
    /// </summary>
    public double DpoSftWeight { get; init; } = 1.0;
    /// <summary>PPO discount.</summary>
    public double Gamma { get; init; } = 1.0;
    /// <summary>PPO GAE lambda.</summary>
    public double Lambda { get; init; } = 0.95;
    /// <summary>PPO value-loss clip range.</summary>
    public double ValueClip { get; init; } = 0.2;
    /// <summary>PPO value-loss coefficient.</summary>
    public double ValueCoefficient { get; init; } = 0.5;
}

/// <summary>Pipeline and run control.</summary>
public sealed record TrainSection
{
    /// <summary>Learner steps (0: until the time limit).</summary>
    public int Steps { get; init; } = 100;
    /// <summary>Wall-clock limit in minutes (0: none).</summary>
    public double TimeLimitMinutes { get; init; }
    /// <summary>Evaluate held-out accuracy every N learner steps (0: only at the start and the end).</summary>
    public int EvalEvery { get; init; } = 20;
    /// <summary>
    /// Save a model checkpoint (output_dir/checkpoint-N) every N steps (0: only at the end). With
    /// <see cref="StateDir"/> set it is also the cadence of crash-safe learner checkpoints (0: every step).
    /// </summary>
    public int CheckpointEvery { get; init; }
    /// <summary>
    /// Directory of the learner's crash-safe checkpoints (weights, optimizer, random state, consumed prompt ids);
    /// a learner started on it resumes. Empty: none (messages are acknowledged right after their update).
    /// </summary>
    public string StateDir { get; init; } = "";
    /// <summary>Directory of the per-sample ledger (one JSON-lines file per service instance); empty: no ledger.</summary>
    public string LedgerDir { get; init; } = "";
    /// <summary>Oldest policy version a sample may come from, as a lag behind the learner.</summary>
    public int MaxPolicyLag { get; init; } = 1;
    /// <summary>Run generation and learning concurrently (false: strictly alternate).</summary>
    public bool Overlap { get; init; } = true;
    /// <summary>Shuffle rewards across samples (a control experiment: learning must then fail).</summary>
    public bool ShuffleRewards { get; init; }
}

/// <summary>How the services talk: the event bus and the weight store.</summary>
public sealed record TransportSection
{
    /// <summary>"inproc" (one process), "redis://[[USER]:PASSWORD@]HOST:PORT" (or rediss:// for TLS) or "kafka://HOST:PORT[,HOST:PORT...]".</summary>
    public string Bus { get; init; } = "inproc";
    /// <summary>"memory" (one process) or "redis://[[USER]:PASSWORD@]HOST:PORT" (or rediss:// for TLS).</summary>
    public string Weights { get; init; } = "memory";
    /// <summary>Kafka client settings passed through as they are (librdkafka names, e.g. security.protocol, sasl.username).</summary>
    public Dictionary<string, string> Kafka { get; init; } = new();
    /// <summary>PEM file of the certificate authority that signed a rediss:// server's certificate (empty: the system's trust store).</summary>
    public string RedisCaFile { get; init; } = "";
    /// <summary>PEM client certificate for a rediss:// server that requires one (Redis's default <c>tls-auth-clients yes</c>).</summary>
    public string RedisClientCertFile { get; init; } = "";
    /// <summary>PEM private key of <see cref="RedisClientCertFile"/>.</summary>
    public string RedisClientKeyFile { get; init; } = "";
}

/// <summary>This service instance.</summary>
public sealed record ServiceSection
{
    /// <summary>The instance's id (consumer id, ledger file name); default host name + process id.</summary>
    public string Id { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";
    /// <summary>HTTP port for /metrics, /healthz and /readyz.</summary>
    public int MetricsPort { get; init; } = 9400;
}

/// <summary>
/// Everything an all-in-one run needs, read from YAML or JSON (snake_case keys) and overridable by
/// `--section.key value` flags. Unknown keys are errors naming the key.
/// </summary>
public sealed record RunConfig
{
    /// <summary>Run identifier (messages, metrics, output folder).</summary>
    public string RunId { get; init; } = "run";
    /// <summary>Folder for checkpoints, metrics.csv, the report and the TensorBoard events.</summary>
    public string OutputDir { get; init; } = "runs/run";
    /// <summary>
    /// Write the learner's TensorBoard event file (events.out.tfevents.*) into <see cref="OutputDir"/> as the run goes:
    /// every metrics.csv value of every step (see <see cref="TensorBoardLog"/>).
    /// </summary>
    public bool Tensorboard { get; init; } = true;
    /// <summary>Seed of everything random.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>"cpu" or "cuda[:N]".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>libtorch threads (0: all cores).</summary>
    public int Threads { get; init; }
    /// <summary>The policy.</summary>
    public ModelSection Model { get; init; } = new();
    /// <summary>The prompts.</summary>
    public TaskSection Task { get; init; } = new();
    /// <summary>Warm start.</summary>
    public SftSection Sft { get; init; } = new();
    /// <summary>Scoring.</summary>
    public RewardSection Reward { get; init; } = new();
    /// <summary>Sampling.</summary>
    public SamplingSection Sampling { get; init; } = new();
    /// <summary>The algorithm.</summary>
    public AlgorithmSection Algorithm { get; init; } = new();
    /// <summary>Run control.</summary>
    public TrainSection Train { get; init; } = new();
    /// <summary>Event bus and weight store.</summary>
    public TransportSection Transport { get; init; } = new();
    /// <summary>This service instance (service commands).</summary>
    public ServiceSection Service { get; init; } = new();

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
    };

    /// <summary>
    /// Reads <paramref name="path"/> (YAML or JSON; null: defaults), applies <paramref name="overrides"/>
    /// ("algorithm.name" -&gt; "ppo"), and validates. Errors name the file and the key.
    /// </summary>
    public static RunConfig Load(string? path, IReadOnlyDictionary<string, string>? overrides = null) => Load(path, overrides, null);

    /// <summary>
    /// Like <see cref="Load(string?, IReadOnlyDictionary{string, string}?)"/> with environment variables between the
    /// file and the flags (precedence: flags, environment, file, defaults). <c>ONLINERL_TRANSPORT__BUS</c> sets
    /// <c>transport.bus</c>: the name after the prefix, lower-cased, with double underscores as dots. Variables
    /// naming no section or top-level key (e.g. ONLINERL_NUM_THREADS) are not configuration and are ignored.
    /// </summary>
    public static RunConfig Load(string? path, IReadOnlyDictionary<string, string>? overrides, IReadOnlyDictionary<string, string>? environment)
    {
        var merged = new Dictionary<string, string>();
        foreach (var (key, value) in EnvironmentOverrides(environment ?? new Dictionary<string, string>())) merged[key] = value;
        foreach (var (key, value) in overrides ?? new Dictionary<string, string>()) merged[key] = value;
        return LoadMerged(path, merged);
    }

    /// <summary>Prefix of the environment variables that set configuration keys.</summary>
    public const string EnvironmentPrefix = "ONLINERL_";

    /// <summary>
    /// The configuration keys set by environment variables: <c>ONLINERL_</c> + the dotted key upper-cased with
    /// dots as double underscores (<c>ONLINERL_TRANSPORT__BUS</c> sets <c>transport.bus</c>). Variables whose
    /// first part names no section or top-level key (e.g. ONLINERL_NUM_THREADS) are not configuration and are ignored.
    /// </summary>
    /// <exception cref="ConfigException">A variable has an empty part (e.g. ONLINERL_TRAIN____STEPS).</exception>
    public static Dictionary<string, string> EnvironmentOverrides(IReadOnlyDictionary<string, string> environment)
    {
        var topLevel = typeof(RunConfig).GetProperties().Select(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name)).ToHashSet();
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in environment)
        {
            if (!name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal)) continue;
            var key = name[EnvironmentPrefix.Length..].ToLowerInvariant().Replace("__", ".", StringComparison.Ordinal);
            if (!topLevel.Contains(key.Split('.')[0])) continue;
            if (key.Split('.').Any(part => part.Length == 0))
                throw new ConfigException($"environment variable {name}: not a configuration key (expected e.g. ONLINERL_TRANSPORT__BUS)");
            keys[key] = value;
        }
        return keys;
    }

    private static RunConfig LoadMerged(string? path, IReadOnlyDictionary<string, string> overrides)
    {
        var root = new JsonObject();
        if (path is not null)
        {
            if (!File.Exists(path)) throw new ConfigException($"config file not found: {path}");
            try
            {
                var text = File.ReadAllText(path);
                root = text.TrimStart().StartsWith('{') ? JsonNode.Parse(text)!.AsObject() : YamlToJson(text);
            }
            catch (Exception e) when (e is JsonException or YamlDotNet.Core.YamlException or InvalidOperationException)
            {
                throw new ConfigException($"{path}: cannot parse ({e.Message})");
            }
        }
        foreach (var (key, value) in overrides) Set(root, key, value);
        StringifyKafkaSettings(root);
        RunConfig config;
        try
        {
            config = root.Deserialize<RunConfig>(Json) ?? new RunConfig();
        }
        catch (JsonException e)
        {
            var where = string.IsNullOrEmpty(e.Path) ? "" : $" at '{e.Path.TrimStart('$', '.')}'";
            throw new ConfigException($"{path ?? "config"}: {e.Message.Split(" Path:")[0]}{where}");
        }
        return config.Validate();
    }

    /// <summary>The configuration as YAML-compatible JSON text (what the run actually used), secrets redacted (see <see cref="Redacted"/>).</summary>
    public string ToJson() => JsonSerializer.Serialize(Redacted(), Json);

    /// <summary>
    /// This configuration with its secrets replaced by <c>***</c>, for reports and logs: the password of a Redis
    /// address and every Kafka setting that holds a credential or key (<see cref="IsSecretKafkaSetting"/>).
    /// </summary>
    public RunConfig Redacted() => this with
    {
        Transport = Transport with
        {
            Bus = Transports.Describe(Transport.Bus),
            Weights = Transports.Describe(Transport.Weights),
            Kafka = Transport.Kafka.ToDictionary(kv => kv.Key, kv => IsSecretKafkaSetting(kv.Key) ? "***" : kv.Value),
        },
    };

    /// <summary>
    /// Whether a librdkafka setting holds a secret: passwords, user names, client secrets, private keys and PEM
    /// contents (the properties librdkafka itself redacts in its logs, and any like them).
    /// </summary>
    public static bool IsSecretKafkaSetting(string name) =>
        new[] { "password", "secret", "username", "pem", "private", "oauthbearer.config", "ssl_key", "jaas", "token" }
            .Any(part => name.Contains(part, StringComparison.OrdinalIgnoreCase));

    private const string KafkaKey = "transport.kafka.";

    private static void Set(JsonObject root, string dottedKey, string value)
    {
        // Kafka setting names contain dots themselves ("security.protocol"): the rest of the key is one name.
        var parts = dottedKey.StartsWith(KafkaKey, StringComparison.Ordinal)
            ? new[] { "transport", "kafka", dottedKey[KafkaKey.Length..] }
            : dottedKey.Split('.');
        var node = root;
        foreach (var part in parts[..^1])
        {
            if (node[part] is not JsonObject child)
            {
                child = new JsonObject();
                node[part] = child;
            }
            node = child;
        }
        node[parts[^1]] = Scalar(value);
    }

    /// <summary>Kafka settings are strings for librdkafka, whatever YAML made of them (true, 1000).</summary>
    private static void StringifyKafkaSettings(JsonObject root)
    {
        if (root["transport"] is not JsonObject transport || transport["kafka"] is not JsonObject kafka) return;
        foreach (var (name, value) in kafka.ToList())
        {
            if (value is JsonValue scalar && scalar.GetValueKind() != JsonValueKind.String)
                kafka[name] = JsonValue.Create(scalar.GetValueKind() switch
                {
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => scalar.ToJsonString(),
                });
        }
    }

    private static JsonNode Scalar(string text)
    {
        if (bool.TryParse(text, out var b)) return JsonValue.Create(b);
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
        // NaN and infinities stay text: JSON has no such numbers, and no key accepts them.
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)) return JsonValue.Create(d);
        return JsonValue.Create(text);
    }

    private static JsonObject YamlToJson(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        if (stream.Documents.Count == 0) return new JsonObject();
        return Convert(stream.Documents[0].RootNode) as JsonObject ?? throw new InvalidOperationException("the top level must be a mapping");

        static JsonNode? Convert(YamlNode node) => node switch
        {
            YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
                KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", Convert(kv.Value)))),
            YamlSequenceNode list => new JsonArray(list.Children.Select(Convert).ToArray()),
            YamlScalarNode scalar when scalar.Style is YamlDotNet.Core.ScalarStyle.SingleQuoted or YamlDotNet.Core.ScalarStyle.DoubleQuoted
                => JsonValue.Create(scalar.Value),
            YamlScalarNode scalar => scalar.Value is null or "~" or "null" ? null : Scalar(scalar.Value),
            _ => null,
        };
    }

    /// <summary>Checks ranges and choices; the error names the key.</summary>
    public RunConfig Validate()
    {
        static bool Positive(double value) => value > 0 && double.IsFinite(value);
        void Require(bool ok, string key, string why)
        {
            if (!ok) throw new ConfigException($"config key '{key}': {why}");
        }
        Require(!string.IsNullOrWhiteSpace(RunId), "run_id", "must not be empty");
        Require(Threads >= 0, "threads", "must be >= 0");
        Require(Device == "cpu" || Device.StartsWith("cuda", StringComparison.Ordinal), "device", $"'{Device}' is not cpu or cuda[:N]");
        Require(Model.HiddenSize > 0 && Model.Heads > 0 && Model.HiddenSize % Model.Heads == 0, "model.hidden_size", "must be a positive multiple of model.heads");
        Require(Model.KvHeads > 0 && Model.Heads % Model.KvHeads == 0, "model.kv_heads", "must divide model.heads");
        Require(Model.Layers > 0, "model.layers", "must be positive");
        Require(Model.IntermediateSize > 0, "model.intermediate_size", "must be positive");
        Require(Model.LoraRank >= 0, "model.lora_rank", "must be >= 0");
        Require(Positive(Model.LoraAlpha), "model.lora_alpha", "must be a positive number");
        Require(Task.Kind is "addition" or "jsonl", "task.kind", $"'{Task.Kind}' is not addition or jsonl");
        Require(Task.Kind != "jsonl" || Task.Path.Length > 0, "task.path", "is required for task.kind jsonl");
        Require(Task.MaxDigits is >= 1 and <= 9, "task.max_digits", "must be 1..9");
        Require(Task.EvalSize >= 0, "task.eval_size", "must be >= 0");
        Require(Task.BadLines is "reject" or "skip", "task.bad_lines", $"'{Task.BadLines}' is not reject or skip");
        Require(Sft.Steps >= 0, "sft.steps", "must be >= 0");
        Require(Positive(Sft.LearningRate), "sft.learning_rate", "must be a positive number");
        Require(Sft.ExamplesPerStep > 0, "sft.examples_per_step", "must be positive");
        Require(double.IsFinite(Reward.ModelWeight), "reward.model_weight", "must be a finite number");
        Require(Reward.Model.Length == 0 || Directory.Exists(Reward.Model), "reward.model", $"directory not found: {Reward.Model}");
        Require(Sampling.GroupSize >= 2, "sampling.group_size", "must be at least 2 (advantages compare completions of a prompt)");
        Require(Positive(Sampling.Temperature), "sampling.temperature", "must be a positive number for on-policy sampling");
        Require(Sampling.TopK >= 0, "sampling.top_k", "must be >= 0 (0: off)");
        Require(Sampling.TopP is > 0 and <= 1, "sampling.top_p", "must be in (0, 1]");
        Require(Sampling.MaxNewTokens > 0, "sampling.max_new_tokens", "must be positive");
        Require(Sampling.Batching is SamplingSection.ContinuousBatching or "static", "sampling.batching", $"'{Sampling.Batching}' is not continuous or static");
        Require(Algorithm.Name is "grpo" or "ppo" or "dpo", "algorithm.name", $"'{Algorithm.Name}' is not grpo, ppo or dpo");
        Require(Positive(Algorithm.LearningRate), "algorithm.learning_rate", "must be a positive number");
        Require(Algorithm.WarmupSteps >= 0, "algorithm.warmup_steps", "must be >= 0");
        Require(Algorithm.MaxGradNorm >= 0 && double.IsFinite(Algorithm.MaxGradNorm), "algorithm.max_grad_norm", "must be a number >= 0 (0: no clipping)");
        Require(Algorithm.PromptsPerStep > 0, "algorithm.prompts_per_step", "must be positive");
        Require(Algorithm.Epochs > 0, "algorithm.epochs", "must be positive");
        Require(Algorithm.Minibatches > 0 && Algorithm.Minibatches <= Algorithm.PromptsPerStep, "algorithm.minibatches", "must be in 1..prompts_per_step");
        Require(Algorithm.ClipLow is > 0 and < 1, "algorithm.clip_low", "must be in (0, 1)");
        Require(Positive(Algorithm.ClipHigh), "algorithm.clip_high", "must be a positive number");
        Require(Algorithm.KlEstimator is "k1" or "k2" or "k3" or "none", "algorithm.kl_estimator", $"'{Algorithm.KlEstimator}' is not k1, k2, k3 or none");
        Require(Algorithm.KlBeta >= 0 && double.IsFinite(Algorithm.KlBeta), "algorithm.kl_beta", "must be a number >= 0");
        Require(Algorithm.MaxImportanceWeight >= 1 && double.IsFinite(Algorithm.MaxImportanceWeight), "algorithm.max_importance_weight",
            "must be a number >= 1 (weights are truncated to it)");
        Require(Algorithm.LossAggregation is "token" or "sequence" or "constant", "algorithm.loss_aggregation", $"'{Algorithm.LossAggregation}' is not token, sequence or constant");
        Require(Algorithm.DpoLoss is "sigmoid" or "ipo", "algorithm.dpo_loss", $"'{Algorithm.DpoLoss}' is not sigmoid or ipo");
        Require(Positive(Algorithm.DpoBeta), "algorithm.dpo_beta", "must be a positive number");
        Require(Algorithm.DpoSftWeight >= 0 && double.IsFinite(Algorithm.DpoSftWeight), "algorithm.dpo_sft_weight", "must be a number >= 0");
        Require(Algorithm.DpoLabelSmoothing is >= 0 and < 0.5, "algorithm.dpo_label_smoothing", "must be in [0, 0.5)");
        Require(Algorithm.Gamma is > 0 and <= 1, "algorithm.gamma", "must be in (0, 1]");
        Require(Algorithm.Lambda is >= 0 and <= 1, "algorithm.lambda", "must be in [0, 1]");
        Require(Positive(Algorithm.ValueClip), "algorithm.value_clip", "must be a positive number");
        Require(Algorithm.ValueCoefficient >= 0 && double.IsFinite(Algorithm.ValueCoefficient), "algorithm.value_coefficient", "must be a number >= 0");
        Require(Train.Steps >= 0, "train.steps", "must be >= 0 (0: until train.time_limit_minutes)");
        Require(Train.TimeLimitMinutes >= 0 && double.IsFinite(Train.TimeLimitMinutes), "train.time_limit_minutes", "must be a number >= 0 (0: none)");
        Require(Train.Steps > 0 || Train.TimeLimitMinutes > 0, "train.steps", "set train.steps or train.time_limit_minutes");
        Require(Train.EvalEvery >= 0, "train.eval_every", "must be >= 0");
        Require(Train.MaxPolicyLag >= 0, "train.max_policy_lag", "must be >= 0");
        Require(Train.CheckpointEvery >= 0, "train.checkpoint_every", "must be >= 0");
        Require(Task.MaxPrompts >= 0, "task.max_prompts", "must be >= 0");
        Require(Transports.IsBusUri(Transport.Bus), "transport.bus", $"'{Transports.Describe(Transport.Bus)}' is not inproc, redis[s]://[[USER]:PASSWORD@]HOST:PORT or kafka://HOST:PORT[,HOST:PORT...]");
        Require(Transports.IsWeightsUri(Transport.Weights), "transport.weights", $"'{Transports.Describe(Transport.Weights)}' is not memory or redis[s]://[[USER]:PASSWORD@]HOST:PORT");
        foreach (var (name, value) in Transport.Kafka)
            Require(name.Trim().Length > 0 && !string.IsNullOrWhiteSpace(value), $"transport.kafka.{name}", "needs a non-empty name and value");
        foreach (var (key, file) in new[] { ("transport.redis_ca_file", Transport.RedisCaFile), ("transport.redis_client_cert_file", Transport.RedisClientCertFile),
                     ("transport.redis_client_key_file", Transport.RedisClientKeyFile) })
            Require(file.Length == 0 || File.Exists(file), key, $"file not found: {file}");
        Require(Transport.RedisClientKeyFile.Length == 0 || Transport.RedisClientCertFile.Length > 0, "transport.redis_client_key_file",
            "needs transport.redis_client_cert_file");
        Require(!string.IsNullOrWhiteSpace(Service.Id), "service.id", "must not be empty");
        Require(Service.MetricsPort is >= 0 and <= 65535, "service.metrics_port", "must be in 0..65535");
        return this;
    }
}

/// <summary>A configuration problem, naming the file and key.</summary>
public sealed class ConfigException(string message) : Exception(message);
