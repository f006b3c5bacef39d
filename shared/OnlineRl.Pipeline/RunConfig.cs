using OnlineRl.Algorithms;

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

    /// <summary>
    /// "in_flight" (PipelineRL): a newer verified policy version is swapped in between two decode steps, the running
    /// completions carry on under it (their keys/values recomputed) and every token records the version it was sampled
    /// under; needs continuous batching. "between_groups": no new prompt joins once a newer version is announced, the
    /// running groups end under the weights they started with and the swap waits for the engine to empty.
    /// </summary>
    public string WeightSwap { get; init; } = InFlightSwap;

    /// <summary>The value of <see cref="WeightSwap"/> that swaps weights between decode steps.</summary>
    public const string InFlightSwap = "in_flight";

    /// <summary>The value of <see cref="WeightSwap"/> that swaps weights only when no group is being sampled.</summary>
    public const string BetweenGroupsSwap = "between_groups";

    /// <summary>
    /// What an in-flight swap does with the running completions' keys/values: "recompute" (exact: one batched forward
    /// over their prompts and tokens so far, so every token comes from one version and its log-prob is that version's)
    /// or "keep" (PipelineRL's choice: no extra forward, later tokens read a context encoded by the older weights; their
    /// behaviour log-probs are still those of the distribution they were sampled from, which is what the learner's
    /// importance weights need). Default keep: on a CPU the recompute costs about as much as decoding the tokens it
    /// covers, which made in-flight swaps slower than swaps between groups (bench: 0.87x recomputed, 1.38x kept).
    /// </summary>
    public string SwapCache { get; init; } = KeepCache;

    /// <summary>The value of <see cref="SwapCache"/> that recomputes the running rows' keys/values.</summary>
    public const string RecomputeCache = "recompute";

    /// <summary>The value of <see cref="SwapCache"/> that keeps the running rows' keys/values.</summary>
    public const string KeepCache = "keep";
}

/// <summary>The learning algorithm and its hyper-parameters.</summary>
public sealed record AlgorithmSection
{
    /// <summary>grpo, ppo or dpo (online DPO); see <see cref="ConfigNames.Algorithm"/>.</summary>
    public AlgorithmKind Name { get; init; } = AlgorithmKind.Grpo;
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
    /// <summary>KL estimator to the reference policy: k1, k2, k3 or none.</summary>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.K3;
    /// <summary>KL coefficient.</summary>
    public double KlBeta { get; init; } = 0.02;
    /// <summary>token (DAPO), sequence (GRPO) or constant (Dr. GRPO).</summary>
    public LossAggregation LossAggregation { get; init; } = LossAggregation.TokenMean;
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
    /// <summary>sigmoid (DPO) or ipo.</summary>
    public DpoLossType DpoLoss { get; init; } = DpoLossType.Sigmoid;
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
/// `--section.key value` flags. Unknown keys are errors naming the key. This file is the schema (every key and its
/// default); RunConfigLoader.cs reads files, environment and flags, RunConfigValidation.cs checks the values.
/// </summary>
public sealed partial record RunConfig
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
}

/// <summary>A configuration problem, naming the file and key.</summary>
public sealed class ConfigException(string message) : Exception(message);
