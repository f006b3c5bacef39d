using System.Diagnostics;
using OnlineRl.Algorithms;
using OnlineRl.Model;

namespace OnlineRl.Training;

/// <summary>Which update the learner runs.</summary>
public enum AlgorithmKind
{
    /// <summary>GRPO / DAPO / Dr. GRPO (group-relative advantages, clipped surrogate).</summary>
    Grpo,
    /// <summary>PPO with a value head, GAE and a KL-penalised reward.</summary>
    Ppo,
    /// <summary>Online DPO on best/worst pairs of each group.</summary>
    Dpo,
}

/// <summary>Hyper-parameters of the learner (see the algorithm files in OnlineRl.Algorithms for the math).</summary>
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
    /// <summary>GRPO / PPO clipped-loss settings, KL penalty and importance-weight truncation.</summary>
    public GrpoOptions Grpo { get; init; } = new();
    /// <summary>Divide group advantages by their std (GRPO) or not (Dr. GRPO).</summary>
    public bool StdNormalize { get; init; } = true;
    /// <summary>Drop groups whose rewards are all equal (they carry no signal in GRPO).</summary>
    public bool FilterEqualGroups { get; init; }
    /// <summary>DPO settings.</summary>
    public DpoOptions Dpo { get; init; } = new();
    /// <summary>PPO discount.</summary>
    public double Gamma { get; init; } = 1.0;
    /// <summary>PPO GAE lambda.</summary>
    public double Lambda { get; init; } = 0.95;
    /// <summary>PPO value clip range.</summary>
    public double ValueClip { get; init; } = 0.2;
    /// <summary>PPO value-loss coefficient.</summary>
    public double ValueCoefficient { get; init; } = 0.5;
    /// <summary>PPO KL coefficient in the reward.</summary>
    public double PpoKlBeta { get; init; } = 0.02;
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
/// The learner: turns batches of scored groups into policy updates with GRPO, PPO or online DPO.
/// Owns the optimizer; the reference model (frozen initial policy) is used for KL terms and DPO.
/// Trains whatever parameters require gradients (all weights, or LoRA adapters only).
/// </summary>
public sealed class Learner : IDisposable
{
    private readonly TransformerModel policy;
    private readonly TransformerModel? reference;
    private readonly LearnerOptions options;
    private readonly List<TorchSharp.Modules.Parameter> trainable;
    private readonly ScheduledAdamW optimizer;
    private readonly Generator random;

    /// <summary>Creates the learner; PPO needs a policy with a value head.</summary>
    public Learner(TransformerModel policy, TransformerModel? reference, LearnerOptions options)
    {
        if (options.Algorithm == AlgorithmKind.Ppo && policy.value_head is null)
            throw new ArgumentException("PPO needs a policy with a value head (ModelHeads.Value)", nameof(policy));
        var needsReference = options.Algorithm switch
        {
            AlgorithmKind.Grpo => options.Grpo.Beta != 0 && options.Grpo.KlEstimator != KlEstimator.None,
            AlgorithmKind.Ppo => options.PpoKlBeta != 0,
            _ => !options.Dpo.ReferenceFree,
        };
        if (needsReference && reference is null) throw new ArgumentException($"{options.Algorithm} with these settings needs a reference model", nameof(reference));
        this.policy = policy;
        this.reference = needsReference ? reference : null;
        this.options = options;
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

        var skipped = options.Algorithm switch
        {
            AlgorithmKind.Grpo => GrpoStep(batch, rewards, metrics),
            AlgorithmKind.Ppo => PpoStep(batch, rewards, metrics),
            _ => DpoStep(batch, rewardValues, metrics),
        };
        metrics["nonfinite_updates"] = NonFiniteUpdates;
        metrics["step_seconds"] = clock.Elapsed.TotalSeconds;
        metrics["tokens_per_second"] = batch.CompletionTokens / clock.Elapsed.TotalSeconds;
        return new LearnerStepStats(StepCount, skipped, metrics);
    }

    private Tensor Shuffle(Tensor rewards)
    {
        var permutation = torch.randperm(rewards.numel(), generator: random).to(rewards.device);
        return rewards.reshape(-1).index_select(0, permutation).reshape(rewards.shape);
    }

    /// <summary>log-probs [B, L-1] (and the final hidden states) of rows under <paramref name="model"/>.</summary>
    private (Tensor logProbs, Tensor hidden) Forward(TransformerModel model, Tensor ids, Tensor attention)
    {
        var hidden = model.Hidden(ids, attention);
        var length = ids.size(1);
        var logits = model.Logits(hidden.narrow(1, 0, length - 1)).to(ScalarType.Float32);
        if (options.Temperature != 1.0) logits = logits.DividedBy(options.Temperature);
        var logProbs = logits.log_softmax(-1).gather(-1, ids.narrow(1, 1, length - 1).unsqueeze(-1)).squeeze(-1);
        return (logProbs, hidden);
    }

    private Tensor? NoGradLogProbs(TransformerModel? model, Tensor ids, Tensor attention)
    {
        if (model is null) return null;
        using var noGrad = torch.no_grad();
        return Forward(model, ids, attention).logProbs;
    }

    /// <summary>Row subsets for minibatches, whole groups kept together.</summary>
    private List<Tensor> Minibatches(int groupCount, int groupSize, Device device)
    {
        var order = options.Minibatches > 1 ? torch.randperm(groupCount, generator: random).data<long>().ToArray().Select(g => (int)g).ToArray() : Enumerable.Range(0, groupCount).ToArray();
        var count = Math.Min(options.Minibatches, groupCount);
        return Enumerable.Range(0, count).Select(m =>
        {
            var rows = order.Where((_, i) => i % count == m).SelectMany(g => Enumerable.Range(g * groupSize, groupSize)).Select(r => (long)r).ToArray();
            return torch.tensor(rows, device: device);
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

    private bool GrpoStep(RolloutBatch batch, Tensor rewards, Dictionary<string, double> metrics)
    {
        var advantages = Advantages.Grpo(rewards, options.StdNormalize).reshape(-1);
        var rows = HeldScalars.Range(0, batch.GroupCount * batch.GroupSize, policy.Device);
        var groupCount = batch.GroupCount;
        if (options.FilterEqualGroups)
        {
            var kept = Algorithms.Grpo.GroupsWithDistinctRewards(rewards);
            metrics["groups_filtered"] = batch.GroupCount - kept.Length;
            if (kept.Length == 0) return true;
            rows = torch.tensor(kept.SelectMany(g => Enumerable.Range(g * batch.GroupSize, batch.GroupSize)).Select(r => (long)r).ToArray(), device: policy.Device);
            groupCount = kept.Length;
        }
        var ids = batch.Ids.index_select(0, rows);
        var attention = batch.AttentionMask.index_select(0, rows);
        var mask = batch.CompletionMask.index_select(0, rows);
        var behaviour = batch.BehaviourLogProbs.index_select(0, rows);
        advantages = advantages.index_select(0, rows);
        var referenceLogProbs = NoGradLogProbs(reference, ids, attention);
        // Several updates per batch need the pre-update policy as the proximal anchor of the clip.
        var proximal = options.Epochs * options.Minibatches > 1 ? NoGradLogProbs(policy, ids, attention) : null;
        var grpo = options.Grpo with { MaxCompletionLength = options.Grpo.MaxCompletionLength ?? mask.size(1) };
        var losses = new List<double>();
        PolicyLossStats? last = null;
        double norm = 0;
        var applied = false;
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            foreach (var mb in Minibatches(groupCount, batch.GroupSize, policy.Device))
            {
                using var inner = torch.NewDisposeScope();
                var (logProbs, _) = Forward(policy, ids.index_select(0, mb), attention.index_select(0, mb));
                var result = Algorithms.Grpo.Loss(logProbs, advantages.index_select(0, mb), mask.index_select(0, mb), grpo,
                    oldLogProbs: proximal?.index_select(0, mb), refLogProbs: referenceLogProbs?.index_select(0, mb),
                    behaviourLogProbs: behaviour.index_select(0, mb));
                result.Loss.backward();
                var lossValue = result.Loss.ItemAsDouble();
                (norm, var made) = ApplyGradients(lossValue);
                applied |= made;
                losses.Add(lossValue);
                last = result.Stats;
            }
        }
        metrics["loss"] = losses.Average();
        metrics["grad_norm"] = norm;
        metrics["kl"] = last!.KlMean;
        metrics["clip_fraction"] = last.ClipFractionLow + last.ClipFractionHigh;
        metrics["ratio_mean"] = last.RatioMean;
        metrics["importance_weight_max"] = last.ImportanceWeightMax;
        return !applied;
    }

    private bool PpoStep(RolloutBatch batch, Tensor rewards, Dictionary<string, double> metrics)
    {
        var ids = batch.Ids;
        var attention = batch.AttentionMask;
        var mask = batch.CompletionMask;
        var length = ids.size(1);
        Tensor oldLogProbs, oldValues, referenceLogProbs;
        using (torch.no_grad())
        {
            var (logProbs, hidden) = Forward(policy, ids, attention);
            oldLogProbs = logProbs;
            oldValues = policy.Values(hidden).narrow(1, 0, length - 1).to(ScalarType.Float32);
            referenceLogProbs = reference is null ? oldLogProbs : Forward(reference, ids, attention).logProbs;
        }
        var tokenRewards = Ppo.KlPenalizedRewards(rewards.reshape(-1), oldLogProbs, referenceLogProbs, mask, options.PpoKlBeta);
        var (advantages, returns) = Advantages.Gae(tokenRewards, oldValues, mask, options.Gamma, options.Lambda);
        advantages = Advantages.Whiten(advantages, mask);
        var losses = new List<double>();
        var valueLosses = new List<double>();
        PolicyLossStats? last = null;
        double norm = 0;
        var applied = false;
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            foreach (var mb in Minibatches(batch.GroupCount, batch.GroupSize, policy.Device))
            {
                using var inner = torch.NewDisposeScope();
                var (logProbs, hidden) = Forward(policy, ids.index_select(0, mb), attention.index_select(0, mb));
                var values = policy.Values(hidden).narrow(1, 0, length - 1).to(ScalarType.Float32);
                var m = mask.index_select(0, mb);
                var policyLoss = Ppo.PolicyLoss(logProbs, oldLogProbs.index_select(0, mb), advantages.index_select(0, mb), m,
                    options.Grpo.ClipLow, behaviourLogProbs: batch.BehaviourLogProbs.index_select(0, mb),
                    maxImportanceWeight: options.Grpo.MaxImportanceWeight);
                var valueLoss = Ppo.ValueLoss(values, oldValues.index_select(0, mb), returns.index_select(0, mb), m, options.ValueClip);
                var loss = Ppo.TotalLoss(policyLoss.Loss, valueLoss.Loss, options.ValueCoefficient);
                loss.backward();
                (norm, var made) = ApplyGradients(loss.ItemAsDouble());
                applied |= made;
                losses.Add(policyLoss.Loss.ItemAsDouble());
                valueLosses.Add(valueLoss.Loss.ItemAsDouble());
                last = policyLoss.Stats;
            }
        }
        using (torch.no_grad())
            metrics["kl"] = Masked.Mean(oldLogProbs - referenceLogProbs, mask).ItemAsDouble();
        metrics["loss"] = losses.Average();
        metrics["value_loss"] = valueLosses.Average();
        metrics["grad_norm"] = norm;
        metrics["clip_fraction"] = last!.ClipFractionLow + last.ClipFractionHigh;
        metrics["ratio_mean"] = last.RatioMean;
        return !applied;
    }

    private bool DpoStep(RolloutBatch batch, float[] rewardValues, Dictionary<string, double> metrics)
    {
        var pairs = Dpo.PairsFromGroups(rewardValues, batch.GroupSize);
        metrics["pairs"] = pairs.Length;
        if (pairs.Length == 0) return true;
        var device = policy.Device;
        var chosenRows = torch.tensor(pairs.Select(p => (long)p.Chosen).ToArray(), device: device);
        var rejectedRows = torch.tensor(pairs.Select(p => (long)p.Rejected).ToArray(), device: device);
        var rows = torch.cat(new[] { chosenRows, rejectedRows });
        var ids = batch.Ids.index_select(0, rows);
        var attention = batch.AttentionMask.index_select(0, rows);
        var mask = batch.CompletionMask.index_select(0, rows);
        var n = pairs.Length;
        var referenceLogProbs = NoGradLogProbs(reference, ids, attention);
        var losses = new List<double>();
        DpoStats? last = null;
        double norm = 0;
        var applied = false;
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            using var inner = torch.NewDisposeScope();
            var (logProbs, _) = Forward(policy, ids, attention);
            var result = Dpo.Loss(logProbs.narrow(0, 0, n), mask.narrow(0, 0, n), logProbs.narrow(0, n, n), mask.narrow(0, n, n),
                referenceLogProbs?.narrow(0, 0, n), referenceLogProbs?.narrow(0, n, n), options.Dpo);
            result.Loss.backward();
            var lossValue = result.Loss.ItemAsDouble();
            (norm, var made) = ApplyGradients(lossValue);
            applied |= made;
            losses.Add(lossValue);
            last = result.Stats;
        }
        metrics["loss"] = losses.Average();
        metrics["grad_norm"] = norm;
        metrics["dpo_reward_accuracy"] = last!.RewardAccuracy;
        metrics["dpo_reward_margin"] = last.RewardMargin;
        return !applied;
    }

    /// <summary>Releases the optimizer state and the random stream.</summary>
    public void Dispose()
    {
        optimizer.Dispose();
        random.Dispose();
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
