
namespace OnlineRl.Algorithms;

/// <summary>A value loss and the fraction of tokens where its clipped branch was taken.</summary>
/// <param name="Loss">The 0-dim loss, in the autograd graph of the values.</param>
/// <param name="ClipFraction">Completion tokens where the clipped squared error exceeds the unclipped one.</param>
public sealed record ValueLossResult(Tensor Loss, double ClipFraction);

/// <summary>Settings of PPO (the update and its defaults for the losses below).</summary>
public sealed record PpoOptions
{
    /// <summary>ε: the ratio is clipped to [1 − ε, 1 + ε] (PPO has one clip range).</summary>
    public double ClipRange { get; init; } = 0.2;

    /// <summary>C of truncated importance sampling for stale samples (see <see cref="ClippedSurrogate"/>); null leaves it untruncated.</summary>
    public double? MaxImportanceWeight { get; init; } = 2.0;

    /// <summary>β of the per-token KL penalty in the rewards, −β·KL_t (k1); 0 turns it off.</summary>
    public double KlBeta { get; init; } = 0.02;

    /// <summary>γ, the discount of GAE.</summary>
    public double Gamma { get; init; } = 1.0;

    /// <summary>λ of GAE.</summary>
    public double Lambda { get; init; } = 0.95;

    /// <summary>ε of the clipped value loss.</summary>
    public double ValueClip { get; init; } = 0.2;

    /// <summary>c1, the weight of the value loss in the total loss.</summary>
    public double ValueCoefficient { get; init; } = 0.5;
}

/// <summary>
/// PPO for language models, token-level (Schulman et al. 2017, "Proximal Policy Optimization Algorithms";
/// per-token KL-penalised rewards from Ziegler et al. 2019, "Fine-Tuning Language Models from Human
/// Preferences", and Ouyang et al. 2022, InstructGPT, eq. 2). The policy loss is the clipped surrogate
/// (<see cref="ClippedSurrogate"/>) with one clip range and per-token GAE advantages (<see cref="Advantages.Gae"/>).
/// PPO paper eq. 9 maximises L^CLIP − c1 L^VF + c2 S; <see cref="TotalLoss"/> minimises its negative.
///
/// One update (<see cref="Prepare"/>): with the pre-update policy, log π_old and V_old (no gradients) and log π_ref;
/// per-token rewards r_t = −β KL_t plus the score at the last token; GAE gives Â_t and the returns R_t; Â is
/// whitened; each minibatch then minimises L^CLIP + c1 L^VF.
/// </summary>
/// <param name="options">Clip ranges, KL penalty, GAE and value-loss settings.</param>
public sealed class Ppo(PpoOptions options) : IAlgorithm
{
    /// <summary>The settings.</summary>
    public PpoOptions Options { get; } = options;

    /// <inheritdoc />
    public bool NeedsReference => Options.KlBeta != 0;

    /// <inheritdoc />
    public bool NeedsValueHead => true;

    /// <summary>
    /// L^CLIP (PPO eq. 7) as a loss: the token mean of −min(ρ_t Â_t, clip(ρ_t, 1 − ε, 1 + ε) Â_t),
    /// ρ_t = exp(log π_θ − log π_old), with no KL term (the KL penalty is in the rewards). Behaviour log-probs
    /// enable the decoupled off-policy correction (<see cref="ClippedSurrogate"/>).
    /// </summary>
    public static PolicyLossResult PolicyLoss(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor mask,
        double clipRange = 0.2, LossAggregation aggregation = LossAggregation.TokenMean,
        Tensor? behaviourLogProbs = null, double? maxImportanceWeight = 2.0)
    {
        Shapes.Rank(logProbs, 2, nameof(logProbs));
        Shapes.Same(logProbs, mask, nameof(mask));
        using var scope = torch.NewDisposeScope();
        var m = mask.to(logProbs.dtype);
        var a = Shapes.PerToken(advantages, logProbs, nameof(advantages)).detach();
        var terms = ClippedSurrogate.PerToken(logProbs, oldLogProbs.detach(), a, clipRange, clipRange, behaviourLogProbs, maxImportanceWeight);
        var loss = ClippedSurrogate.Aggregate(terms.PerTokenLoss, m, aggregation);   // −w · min(ρÂ, clip(ρ)Â), reduced
        var stats = ClippedSurrogate.Stats(terms, a, m, kl: null, clipRange, clipRange);
        return new PolicyLossResult(scope.MoveToOuter(loss), stats);
    }

    /// <summary>
    /// Clipped value loss (PPO2's baselines implementation, as in TRL and CleanRL):
    ///     V_clip = clip(V, V_old − ε, V_old + ε),
    ///     L^VF = ½ · mean_m max((V − R)², (V_clip − R)²),
    /// the mean over completion tokens. R are the returns (value targets, e.g. from <see cref="Advantages.Gae"/>).
    /// </summary>
    public static ValueLossResult ValueLoss(Tensor values, Tensor oldValues, Tensor returns, Tensor mask, double clipRange = 0.2)
    {
        Shapes.Rank(values, 2, nameof(values));
        Shapes.Same(values, oldValues, nameof(oldValues));
        Shapes.Same(values, returns, nameof(returns));
        Shapes.Same(values, mask, nameof(mask));
        using var scope = torch.NewDisposeScope();
        var m = mask.to(values.dtype);
        var vOld = oldValues.detach();
        var r = returns.detach();
        var vClipped = values.clamp(vOld.Minus(clipRange), vOld.Plus(clipRange));   // clip(V, V_old − ε, V_old + ε)
        var unclipped = (values - r).Squared();                             // (V − R)²
        var clipped = (vClipped - r).Squared();                             // (V_clip − R)²
        var loss = Masked.Mean(unclipped.maximum(clipped), m).Times(0.5);      // ½ mean max(·, ·)
        double clipFraction;
        using (torch.no_grad())
            clipFraction = Masked.Mean(clipped.gt(unclipped).to(m.dtype), m).ItemAsDouble();
        return new ValueLossResult(scope.MoveToOuter(loss), clipFraction);
    }

    /// <summary>
    /// Per-token rewards with a KL penalty (Ziegler et al. 2019; InstructGPT eq. 2):
    ///     r_t = −β · KL_t  on every completion token,   plus the sequence score at the last completion token,
    /// with KL_t = log π_θ − log π_ref (k1, the default) or another estimator. <paramref name="scores"/> is [B];
    /// a row without completion tokens gets no reward. Masked positions are 0. Detached.
    /// </summary>
    public static Tensor KlPenalizedRewards(Tensor scores, Tensor logProbs, Tensor refLogProbs, Tensor mask, double beta,
        KlEstimator estimator = KlEstimator.K1)
    {
        Shapes.Rank(logProbs, 2, nameof(logProbs));
        Shapes.Same(logProbs, mask, nameof(mask));
        if (scores.dim() != 1 || scores.size(0) != logProbs.size(0))
            throw new ArgumentException($"scores has shape {Shapes.Text(scores)}, expected [{logProbs.size(0)}]", nameof(scores));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var m = mask.to(logProbs.dtype);
        var kl = Kl.PerToken(logProbs.detach(), refLogProbs, estimator);
        var rewards = kl.Times(-beta) * m;                                        // r_t = −β KL_t
        // The last completion token of each row: the largest (t + 1) · m_t, at t = argmax.
        var positions = HeldScalars.Range(1, logProbs.size(1) + 1, m.device).to(m.dtype);
        var last = (m * positions).argmax(1, keepdim: true);                      // [B, 1]
        var hasTokens = m.sum(1).gt(HeldScalars.Zero).to(m.dtype);                             // rows with a completion
        var score = (scores.to(m.dtype) * hasTokens).unsqueeze(1);
        rewards = rewards.scatter_add(1, last, score);                            // r_T += score
        return scope.MoveToOuter(rewards);
    }

    /// <summary>
    /// Entropy of the policy at every position, H_t = −Σ_v π(v) log π(v), from logits [B, T, V]; returns [B, T].
    /// </summary>
    public static Tensor Entropy(Tensor logits)
    {
        using var scope = torch.NewDisposeScope();
        var logP = logits.log_softmax(-1);
        var entropy = -(logP.exp() * logP).sum(-1);                               // −Σ_v π log π
        return scope.MoveToOuter(entropy);
    }

    /// <summary>
    /// PPO's combined objective (eq. 9) as a loss to minimise:
    ///     L = L^CLIP_loss + c1 · L^VF − c2 · S,    S = mean_m H_t (the entropy bonus; omitted when null).
    /// </summary>
    public static Tensor TotalLoss(Tensor policyLoss, Tensor valueLoss, double valueCoefficient,
        Tensor? entropy = null, Tensor? mask = null, double entropyCoefficient = 0)
    {
        using var scope = torch.NewDisposeScope();
        var loss = policyLoss.Plus(valueLoss.Times(valueCoefficient));                 // L^CLIP + c1 L^VF
        if (entropy is not null && entropyCoefficient != 0)
        {
            if (mask is null) throw new ArgumentNullException(nameof(mask), "the entropy bonus needs the completion mask");
            loss = loss - Masked.Mean(entropy, mask).Times(entropyCoefficient);    // − c2 S
        }
        return scope.MoveToOuter(loss);
    }

    /// <inheritdoc />
    public IAlgorithmUpdate? Prepare(Rollouts batch, IPolicyModels models, IDictionary<string, double> metrics)
    {
        var mask = batch.CompletionMask;
        Tensor oldLogProbs, oldValues, referenceLogProbs;
        using (torch.no_grad())
        {
            (oldLogProbs, var values) = models.Policy(batch.Ids, batch.AttentionMask, withValues: true);   // log π_old, V_old
            oldValues = values!;
            referenceLogProbs = models.Reference(batch.Ids, batch.AttentionMask) ?? oldLogProbs;          // no reference: KL 0
            metrics["kl"] = Masked.Mean(oldLogProbs - referenceLogProbs, mask).ItemAsDouble();
        }
        var tokenRewards = KlPenalizedRewards(batch.Rewards.reshape(-1), oldLogProbs, referenceLogProbs, mask, Options.KlBeta);
        var (advantages, returns) = Advantages.Gae(tokenRewards, oldValues, mask, Options.Gamma, Options.Lambda);
        advantages = Advantages.Whiten(advantages, mask);
        return new Update(this, batch, oldLogProbs, oldValues, advantages, returns);
    }

    private sealed record Update(Ppo Algorithm, Rollouts Batch, Tensor OldLogProbs, Tensor OldValues, Tensor Advantages, Tensor Returns)
        : IAlgorithmUpdate
    {
        public int? MinibatchGroups => Batch.GroupCount;

        public MinibatchLoss Loss(Tensor? rows, IPolicyModels models)
        {
            Tensor Rows(Tensor t) => rows is null ? t : t.index_select(0, rows);
            var options = Algorithm.Options;
            var (logProbs, values) = models.Policy(Rows(Batch.Ids), Rows(Batch.AttentionMask), withValues: true);
            var m = Rows(Batch.CompletionMask);
            var policyLoss = PolicyLoss(logProbs, Rows(OldLogProbs), Rows(Advantages), m, options.ClipRange,
                behaviourLogProbs: Rows(Batch.BehaviourLogProbs), maxImportanceWeight: options.MaxImportanceWeight);
            var valueLoss = ValueLoss(values!, Rows(OldValues), Rows(Returns), m, options.ValueClip);
            var loss = TotalLoss(policyLoss.Loss, valueLoss.Loss, options.ValueCoefficient);      // L^CLIP + c1 L^VF
            var s = policyLoss.Stats;
            return new MinibatchLoss(loss, [("loss", policyLoss.Loss.ItemAsDouble()), ("value_loss", valueLoss.Loss.ItemAsDouble())],
                [("clip_fraction", s.ClipFractionLow + s.ClipFractionHigh), ("ratio_mean", s.RatioMean)]);
        }
    }
}
