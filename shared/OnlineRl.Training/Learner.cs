using System.Diagnostics;
using OnlineRl.Algorithms;
using OnlineRl.Model;

namespace OnlineRl.Training;

/// <summary>
/// Hyper-parameters of the learner: the shared loop's (rate schedule, clipping, epochs, minibatches) and the chosen
/// algorithm's (see the algorithm files in OnlineRl.Algorithms for the math).
/// </summary>
public sealed record LearnerOptions
{
    /// <summary>The update.</summary>
    public AlgorithmKind Algorithm { get; init; } = AlgorithmKind.Grpo;
    /// <summary>
    /// Peak learning rate. RL wants a smaller rate than SFT: Adam moves every weight by about the rate per step
    /// whatever the gradient's noise, so at 3e-4 the small addition-task model collapses under GRPO and DPO
    /// while 1e-4 improves it (tests/OnlineRl.Pipeline.Tests/LearningTests.cs).
    /// </summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 20;
    /// <summary>Steps of the cosine schedule (the rate then stays at 10% of the peak).</summary>
    public int TotalSteps { get; init; } = 1000;
    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Gradient-norm clip (0: off).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Passes over each batch.</summary>
    public int Epochs { get; init; } = 1;
    /// <summary>Minibatches per pass (split by group).</summary>
    public int Minibatches { get; init; } = 1;
    /// <summary>Temperature the generators sampled with: log-probs are recomputed at the same temperature.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>GRPO's settings (used when <see cref="Algorithm"/> is GRPO).</summary>
    public GrpoOptions Grpo { get; init; } = new();
    /// <summary>PPO's settings.</summary>
    public PpoOptions Ppo { get; init; } = new();
    /// <summary>Online DPO's settings.</summary>
    public DpoOptions Dpo { get; init; } = new();
    /// <summary>Permute rewards across all samples of a batch: a control that must destroy learning.</summary>
    public bool ShuffleRewards { get; init; }
    /// <summary>Seed of minibatch order and reward shuffling.</summary>
    public long Seed { get; init; }
}

/// <summary>What one learner step did; <see cref="Metrics"/> holds every number by name (for CSV and Prometheus).</summary>
/// <param name="Step">1-based step number.</param>
/// <param name="Skipped">True when no update was made (e.g. every group filtered out).</param>
/// <param name="Metrics">Named values: loss, reward_mean, kl, clip_fraction, grad_norm, ...</param>
public sealed record LearnerStepStats(long Step, bool Skipped, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// The learner: turns batches of scored groups into policy updates with GRPO, PPO or online DPO. The algorithm
/// (<see cref="IAlgorithm"/>) prepares each batch and gives the loss of each minibatch; the learner's one loop
/// does epochs, minibatches, backward, gradient clipping, the optimizer step and the metrics for all of them.
/// Owns the optimizer; the reference model (frozen initial policy) is used for KL terms and DPO.
/// Trains whatever parameters require gradients (all weights, or LoRA adapters only).
/// </summary>
public sealed class Learner : IDisposable
{
    private readonly TransformerModel policy;
    private readonly LearnerOptions options;
    private readonly IAlgorithm algorithm;
    private readonly Models models;
    private readonly List<TorchSharp.Modules.Parameter> trainable;
    private readonly ScheduledAdamW optimizer;
    private readonly Generator random;

    /// <summary>Creates the learner; PPO needs a policy with a value head.</summary>
    public Learner(TransformerModel policy, TransformerModel? reference, LearnerOptions options)
    {
        algorithm = options.Algorithm switch
        {
            AlgorithmKind.Grpo => new Algorithms.Grpo(options.Grpo),
            AlgorithmKind.Ppo => new Ppo(options.Ppo),
            AlgorithmKind.Dpo => new Dpo(options.Dpo),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Algorithm, "unknown algorithm"),
        };
        if (algorithm.NeedsValueHead && policy.value_head is null)
            throw new ArgumentException($"{options.Algorithm.ToString().ToUpperInvariant()} needs a policy with a value head (ModelHeads.Value)", nameof(policy));
        if (algorithm.NeedsReference && reference is null) throw new ArgumentException($"{options.Algorithm} with these settings needs a reference model", nameof(reference));
        this.policy = policy;
        this.options = options;
        models = new Models(policy, algorithm.NeedsReference ? reference : null, options.Temperature);
        trainable = policy.parameters().Where(p => p.requires_grad).ToList();
        if (trainable.Count == 0) throw new ArgumentException("the policy has no trainable parameters", nameof(policy));
        optimizer = new ScheduledAdamW(trainable,
            new WarmupCosineSchedule(options.LearningRate, options.WarmupSteps, options.TotalSteps, options.LearningRate * 0.1), options.WeightDecay);
        random = new Generator(unchecked((ulong)options.Seed), CPU);
    }

    /// <summary>Updates taken so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>The optimizer (its state belongs in checkpoints).</summary>
    public ScheduledAdamW Optimizer => optimizer;

    /// <summary>Updates (or minibatch updates) dropped because the loss or the gradient norm was NaN or infinite.</summary>
    public long NonFiniteUpdates { get; private set; }

    /// <summary>
    /// Everything besides the weights that the next update depends on: step count, optimizer state (whose
    /// step count is the learning-rate schedule's position) and the private random stream. Dispose it.
    /// </summary>
    public LearnerState CaptureState() => new(StepCount, NonFiniteUpdates, optimizer.State(), random.get_state());

    /// <summary>Restores a state from <see cref="CaptureState"/> (after the weights were loaded into the policy).</summary>
    public void RestoreState(LearnerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        optimizer.LoadState(state.Optimizer);
        random.set_state(state.RandomState);
        StepCount = state.Step;
        NonFiniteUpdates = state.NonFiniteUpdates;
    }

    /// <summary>Runs one update on <paramref name="groups"/>.</summary>
    public LearnerStepStats Step(IReadOnlyList<ScoredGroupData> groups)
    {
        var clock = Stopwatch.StartNew();
        StepCount++;
        var metrics = new Dictionary<string, double>();
        using var scope = torch.NewDisposeScope();
        using var batch = RolloutBatch.Build(groups, policy.Device);
        var rewards = options.ShuffleRewards ? Shuffle(batch.Rewards) : batch.Rewards;
        var rewardValues = rewards.data<float>().ToArray();
        metrics["reward_mean"] = rewardValues.Average();
        metrics["reward_std"] = Math.Sqrt(rewardValues.Select(r => (r - metrics["reward_mean"]) * (r - metrics["reward_mean"])).Average());
        metrics["completion_tokens"] = batch.CompletionTokens;
        metrics["completion_length_mean"] = (double)batch.CompletionTokens / (batch.GroupCount * batch.GroupSize);
        metrics["learning_rate"] = optimizer.LearningRate;
        policy.train();

        var rollouts = new Rollouts(batch.Ids, batch.AttentionMask, batch.CompletionMask, batch.BehaviourLogProbs, rewards,
            options.Epochs * options.Minibatches);
        var update = algorithm.Prepare(rollouts, models, metrics);
        var skipped = update is null || !Update(update, batch.GroupSize, metrics);
        metrics["nonfinite_updates"] = NonFiniteUpdates;
        metrics["step_seconds"] = clock.Elapsed.TotalSeconds;
        metrics["tokens_per_second"] = batch.CompletionTokens / clock.Elapsed.TotalSeconds;
        return new LearnerStepStats(StepCount, skipped, metrics);
    }

    /// <summary>
    /// The shared loop: for each epoch and minibatch, the algorithm's loss, backward, clipping and the optimizer step.
    /// Adds the loss metrics (averaged over minibatches), the last gradient norm and the last minibatch's statistics;
    /// returns whether any update reached the weights.
    /// </summary>
    private bool Update(IAlgorithmUpdate update, int groupSize, Dictionary<string, double> metrics)
    {
        var averaged = new Dictionary<string, List<double>>();
        IReadOnlyList<(string Name, double Value)> last = [];
        double norm = 0;
        var applied = false;
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            var minibatches = update.MinibatchGroups is { } groups ? Minibatches(groups, groupSize, policy.Device) : new List<Tensor?> { null };
            foreach (var rows in minibatches)
            {
                using var inner = torch.NewDisposeScope();
                var result = update.Loss(rows, models);
                result.Loss.backward();
                (norm, var made) = ApplyGradients(result.Loss.ItemAsDouble());
                applied |= made;
                foreach (var (name, value) in result.Averaged)
                {
                    if (!averaged.TryGetValue(name, out var values)) averaged[name] = values = [];
                    values.Add(value);
                }
                last = result.Last;
            }
        }
        foreach (var (name, values) in averaged) metrics[name] = values.Average();
        metrics["grad_norm"] = norm;
        foreach (var (name, value) in last) metrics[name] = value;
        return applied;
    }

    private Tensor Shuffle(Tensor rewards)
    {
        var permutation = torch.randperm(rewards.numel(), generator: random).to(rewards.device);
        return rewards.reshape(-1).index_select(0, permutation).reshape(rewards.shape);
    }

    /// <summary>Row subsets for minibatches, whole groups kept together.</summary>
    private List<Tensor?> Minibatches(int groupCount, int groupSize, Device device)
    {
        var order = options.Minibatches > 1 ? torch.randperm(groupCount, generator: random).data<long>().ToArray().Select(g => (int)g).ToArray() : Enumerable.Range(0, groupCount).ToArray();
        var count = Math.Min(options.Minibatches, groupCount);
        return Enumerable.Range(0, count).Select(m =>
        {
            var rows = order.Where((_, i) => i % count == m).SelectMany(g => Enumerable.Range(g * groupSize, groupSize)).Select(r => (long)r).ToArray();
            return (Tensor?)torch.tensor(rows, device: device);
        }).ToList();
    }

    /// <summary>Clips and applies the gradients of <paramref name="loss"/>; returns the gradient norm and whether the update was made.</summary>
    private (double Norm, bool Applied) ApplyGradients(double loss)
    {
        var norm = options.MaxGradNorm > 0 ? torch.nn.utils.clip_grad_norm_(trainable, options.MaxGradNorm) : double.NaN;
        if (!double.IsFinite(loss) || (!double.IsFinite(norm) && options.MaxGradNorm > 0))
        {
            // A NaN/inf loss or gradient must never reach the weights (nor, through them, a checkpoint or
            // the generators): drop this update and count it.
            optimizer.ZeroGrad();
            NonFiniteUpdates++;
            return (norm, false);
        }
        optimizer.Step();
        optimizer.ZeroGrad();
        return (norm, true);
    }

    /// <summary>Releases the optimizer state and the random stream.</summary>
    public void Dispose()
    {
        optimizer.Dispose();
        random.Dispose();
    }

    /// <summary>The policy and reference as the algorithms see them: log-probs of the sampled tokens at the sampling temperature.</summary>
    private sealed class Models(TransformerModel policy, TransformerModel? reference, double temperature) : IPolicyModels
    {
        public (Tensor LogProbs, Tensor? Values) Policy(Tensor ids, Tensor attentionMask, bool withValues = false)
        {
            var (logProbs, hidden) = Forward(policy, ids, attentionMask);
            var values = withValues ? policy.Values(hidden).narrow(1, 0, ids.size(1) - 1).to(ScalarType.Float32) : null;
            return (logProbs, values);
        }

        public Tensor? Reference(Tensor ids, Tensor attentionMask)
        {
            if (reference is null) return null;
            using var noGrad = torch.no_grad();
            return Forward(reference, ids, attentionMask).logProbs;
        }

        /// <summary>log-probs [B, L-1] (and the final hidden states) of rows under <paramref name="model"/>.</summary>
        private (Tensor logProbs, Tensor hidden) Forward(TransformerModel model, Tensor ids, Tensor attention)
        {
            var hidden = model.Hidden(ids, attention);
            var length = ids.size(1);
            var logits = model.Logits(hidden.narrow(1, 0, length - 1)).to(ScalarType.Float32);
            if (temperature != 1.0) logits = logits.DividedBy(temperature);
            var logProbs = logits.log_softmax(-1).gather(-1, ids.narrow(1, 1, length - 1).unsqueeze(-1)).squeeze(-1);
            return (logProbs, hidden);
        }
    }
}

/// <summary>The learner's state besides the weights (see <see cref="Learner.CaptureState"/>).</summary>
/// <param name="Step">Updates taken.</param>
/// <param name="NonFiniteUpdates">Updates dropped for a NaN/inf loss or gradient.</param>
/// <param name="Optimizer">The optimizer's step counts and moments (borrowed from the optimizer, or loaded).</param>
/// <param name="RandomState">The learner's random stream (a uint8 tensor this record owns).</param>
public sealed record LearnerState(long Step, long NonFiniteUpdates, AdamWState Optimizer, Tensor RandomState) : IDisposable
{
    /// <summary>Releases the random-state tensor (the optimizer's moments belong to whoever made them).</summary>
    public void Dispose() => RandomState.Dispose();
}
