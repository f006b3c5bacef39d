namespace OnlineRl.Pipeline;

// Checking a loaded configuration: ranges and choices, each error naming its key.
public sealed partial record RunConfig
{
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
        Require(Sampling.WeightSwap is SamplingSection.InFlightSwap or SamplingSection.BetweenGroupsSwap, "sampling.weight_swap",
            $"'{Sampling.WeightSwap}' is not in_flight or between_groups");
        Require(Sampling.SwapCache is SamplingSection.RecomputeCache or SamplingSection.KeepCache, "sampling.swap_cache", $"'{Sampling.SwapCache}' is not recompute or keep");
        Require(Sampling.WeightSwap != SamplingSection.InFlightSwap || Sampling.Batching == SamplingSection.ContinuousBatching, "sampling.weight_swap",
            "in_flight swaps need sampling.batching continuous (static batches swap between batches: set weight_swap: between_groups)");
        Require(Positive(Algorithm.LearningRate), "algorithm.learning_rate", "must be a positive number");
        Require(Algorithm.WarmupSteps >= 0, "algorithm.warmup_steps", "must be >= 0");
        Require(Algorithm.MaxGradNorm >= 0 && double.IsFinite(Algorithm.MaxGradNorm), "algorithm.max_grad_norm", "must be a number >= 0 (0: no clipping)");
        Require(Algorithm.PromptsPerStep > 0, "algorithm.prompts_per_step", "must be positive");
        Require(Algorithm.Epochs > 0, "algorithm.epochs", "must be positive");
        Require(Algorithm.Minibatches > 0 && Algorithm.Minibatches <= Algorithm.PromptsPerStep, "algorithm.minibatches", "must be in 1..prompts_per_step");
        Require(Algorithm.ClipLow is > 0 and < 1, "algorithm.clip_low", "must be in (0, 1)");
        Require(Positive(Algorithm.ClipHigh), "algorithm.clip_high", "must be a positive number");
        Require(Algorithm.KlBeta >= 0 && double.IsFinite(Algorithm.KlBeta), "algorithm.kl_beta", "must be a number >= 0");
        Require(Algorithm.MaxImportanceWeight >= 1 && double.IsFinite(Algorithm.MaxImportanceWeight), "algorithm.max_importance_weight",
            "must be a number >= 1 (weights are truncated to it)");
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
        Require(TransportUris.IsBusUri(Transport.Bus), "transport.bus", $"'{TransportUris.Describe(Transport.Bus)}' is not inproc, redis[s]://[[USER]:PASSWORD@]HOST:PORT or kafka://HOST:PORT[,HOST:PORT...]");
        Require(TransportUris.IsWeightsUri(Transport.Weights), "transport.weights", $"'{TransportUris.Describe(Transport.Weights)}' is not memory or redis[s]://[[USER]:PASSWORD@]HOST:PORT");
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
