
namespace OnlineRl.Algorithms;

/// <summary>Settings of GRPO (<see cref="Grpo.Loss"/> and the update). The defaults are GRPO's; DAPO uses ClipHigh = 0.28.</summary>
public sealed record GrpoOptions
{
    /// <summary>ε_low: the ratio is clipped below at 1 − ε_low.</summary>
    public double ClipLow { get; init; } = 0.2;

    /// <summary>ε_high: the ratio is clipped above at 1 + ε_high (DAPO's clip-higher: 0.28).</summary>
    public double ClipHigh { get; init; } = 0.2;

    /// <summary>How the per-token loss is reduced; see <see cref="LossAggregation"/>.</summary>
    public LossAggregation Aggregation { get; init; } = LossAggregation.TokenMean;

    /// <summary>L_max of <see cref="LossAggregation.SumOverMaxTokens"/>; null uses T, the width of the batch.</summary>
    public long? MaxCompletionLength { get; init; }

    /// <summary>β of the per-token KL penalty β·KL[π_θ ‖ π_ref] added to the loss; 0 turns it off.</summary>
    public double Beta { get; init; }

    /// <summary>The KL estimator of the penalty and of the KL statistic (GRPO: k3).</summary>
    public KlEstimator KlEstimator { get; init; } = KlEstimator.K3;

    /// <summary>
    /// C of truncated importance sampling: the behaviour correction weight is min(π_prox / π_behav, C).
    /// Null leaves it untruncated. Only used when behaviour log-probs are given.
    /// </summary>
    public double? MaxImportanceWeight { get; init; } = 2.0;

    /// <summary>Divide group advantages by their std (GRPO) or not (Dr. GRPO); see <see cref="Advantages.Grpo"/>.</summary>
    public bool StdNormalize { get; init; } = true;

    /// <summary>Drop groups whose rewards are all equal (DAPO's dynamic sampling: they carry no signal).</summary>
    public bool FilterEqualGroups { get; init; }
}

/// <summary>
/// GRPO and its variants: DAPO (clip-higher, token-level loss, dynamic sampling), Dr. GRPO (no length or std
/// normalisation), and the decoupled PPO objective for off-policy (asynchronous) data.
///
/// DeepSeekMath (Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning", eq. 3):
///     J(θ) = E[ (1/G) Σ_i (1/|o_i|) Σ_t { min(ρ_{i,t} Â_{i,t}, clip(ρ_{i,t}, 1 − ε, 1 + ε) Â_{i,t}) − β D_KL[π_θ ‖ π_ref] } ],
///     ρ_{i,t} = π_θ(o_{i,t} | q, o_{i,&lt;t}) / π_θold(o_{i,t} | q, o_{i,&lt;t}) = exp(log π_θ − log π_θold),
/// with the group-relative advantage Â_{i,t} = (r_i − mean(r)) / std(r) of <see cref="Advantages.Grpo"/> and the k3
/// KL estimator of <see cref="Kl"/>. The clipped term, clip-higher (DAPO) and the decoupled importance weight
/// π_prox / π_behav (truncated at C) are <see cref="ClippedSurrogate"/>; the proximal log-probs are the "old" ones.
/// The loss minimised is −J per token, plus β·KL per token, reduced as <see cref="LossAggregation"/> says.
///
/// One update (<see cref="Prepare"/>): Â from the batch's rewards; DAPO drops groups of equal rewards; log π_ref
/// once, and log π_old once when the learner takes several optimizer steps on the batch (else ρ = 1 and the
/// clip only guards later steps); each minibatch then minimises <see cref="Loss"/>.
/// </summary>
/// <param name="options">Clip range, aggregation, KL penalty, truncation, advantage settings.</param>
public sealed class Grpo(GrpoOptions options) : IAlgorithm
{
    /// <summary>The settings.</summary>
    public GrpoOptions Options { get; } = options;

    /// <inheritdoc />
    public bool NeedsReference => Options.Beta != 0 && Options.KlEstimator != KlEstimator.None;

    /// <inheritdoc />
    public bool NeedsValueHead => false;

    /// <summary>
    /// The GRPO / DAPO / Dr. GRPO policy loss.
    /// </summary>
    /// <param name="logProbs">log π_θ of the sampled tokens [B, T], in the autograd graph.</param>
    /// <param name="advantages">Â: per completion [B] (GRPO, broadcast over tokens) or per token [B, T].</param>
    /// <param name="mask">[B, T]: 1 on completion tokens, 0 on prompt and padding.</param>
    /// <param name="options">Clip range, aggregation, KL penalty, truncation; null for the defaults.</param>
    /// <param name="oldLogProbs">log π_old (the proximal policy) [B, T]; null means on-policy: log π_θ detached, ρ = 1.</param>
    /// <param name="refLogProbs">log π_ref [B, T]; needed when β ≠ 0 (unless the estimator is None).</param>
    /// <param name="behaviourLogProbs">
    /// log π_behav [B, T] of the policy that sampled the tokens (e.g. the inference engine), when it differs from
    /// the proximal policy; null means they are the same and no importance weight is applied.
    /// </param>
    public static PolicyLossResult Loss(Tensor logProbs, Tensor advantages, Tensor mask, GrpoOptions? options = null,
        Tensor? oldLogProbs = null, Tensor? refLogProbs = null, Tensor? behaviourLogProbs = null)
    {
        options ??= new GrpoOptions();
        Shapes.Rank(logProbs, 2, nameof(logProbs));
        Shapes.Same(logProbs, mask, nameof(mask));
        if (options.Beta != 0 && options.KlEstimator != KlEstimator.None && refLogProbs is null)
            throw new ArgumentNullException(nameof(refLogProbs), $"a KL penalty (Beta = {options.Beta}) needs reference log-probs");

        using var scope = torch.NewDisposeScope();
        var m = mask.to(logProbs.dtype);
        var a = Shapes.PerToken(advantages, logProbs, nameof(advantages)).detach();
        var prox = oldLogProbs?.detach() ?? logProbs.detach();
        var terms = ClippedSurrogate.PerToken(logProbs, prox, a, options.ClipLow, options.ClipHigh, behaviourLogProbs, options.MaxImportanceWeight);

        var perToken = terms.PerTokenLoss;                                     // −w · min(ρÂ, clip(ρ)Â)
        var kl = refLogProbs is null ? null : Kl.PerToken(logProbs, refLogProbs, options.KlEstimator);
        if (options.Beta != 0 && kl is not null) perToken = perToken.Plus(kl.Times(options.Beta));   // + β·KL_t

        var loss = ClippedSurrogate.Aggregate(perToken, m, options.Aggregation, options.MaxCompletionLength);
        var stats = ClippedSurrogate.Stats(terms, a, m, kl, options.ClipLow, options.ClipHigh);
        return new PolicyLossResult(scope.MoveToOuter(loss), stats);
    }

    /// <inheritdoc />
    public IAlgorithmUpdate? Prepare(Rollouts batch, IPolicyModels models, IDictionary<string, double> metrics)
    {
        var device = batch.Ids.device;
        var advantages = Advantages.Grpo(batch.Rewards, Options.StdNormalize).reshape(-1);   // Â_i, one per completion
        var rows = HeldScalars.Range(0, batch.GroupCount * batch.GroupSize, device);
        var groupCount = batch.GroupCount;
        if (Options.FilterEqualGroups)
        {
            var kept = GroupsWithDistinctRewards(batch.Rewards);
            metrics["groups_filtered"] = batch.GroupCount - kept.Length;
            if (kept.Length == 0) return null;
            rows = torch.tensor(kept.SelectMany(g => Enumerable.Range(g * batch.GroupSize, batch.GroupSize)).Select(r => (long)r).ToArray(), device: device);
            groupCount = kept.Length;
        }
        var ids = batch.Ids.index_select(0, rows);
        var attention = batch.AttentionMask.index_select(0, rows);
        var mask = batch.CompletionMask.index_select(0, rows);
        var referenceLogProbs = models.Reference(ids, attention);
        // Several updates per batch need the pre-update policy as the proximal anchor of the clip.
        Tensor? proximal = null;
        if (batch.UpdatesPerBatch > 1)
            using (torch.no_grad()) proximal = models.Policy(ids, attention).LogProbs;
        return new Update(this, groupCount, ids, attention, mask, batch.BehaviourLogProbs.index_select(0, rows),
            advantages.index_select(0, rows), referenceLogProbs, proximal);
    }

    private sealed record Update(Grpo Algorithm, int Groups, Tensor Ids, Tensor Attention, Tensor Mask, Tensor Behaviour,
        Tensor Advantages, Tensor? ReferenceLogProbs, Tensor? Proximal) : IAlgorithmUpdate
    {
        public int? MinibatchGroups => Groups;

        public MinibatchLoss Loss(Tensor? rows, IPolicyModels models)
        {
            Tensor Rows(Tensor t) => rows is null ? t : t.index_select(0, rows);
            var options = Algorithm.Options with { MaxCompletionLength = Algorithm.Options.MaxCompletionLength ?? Mask.size(1) };
            var (logProbs, _) = models.Policy(Rows(Ids), Rows(Attention));
            var result = Grpo.Loss(logProbs, Rows(Advantages), Rows(Mask), options,
                oldLogProbs: Proximal is null ? null : Rows(Proximal), refLogProbs: ReferenceLogProbs is null ? null : Rows(ReferenceLogProbs),
                behaviourLogProbs: Rows(Behaviour));
            var s = result.Stats;
            return new MinibatchLoss(result.Loss, [("loss", result.Loss.ItemAsDouble())],
                [("kl", s.KlMean), ("clip_fraction", s.ClipFractionLow + s.ClipFractionHigh), ("ratio_mean", s.RatioMean),
                 ("importance_weight_max", s.ImportanceWeightMax)]);
        }
    }

    /// <summary>
    /// DAPO's dynamic sampling (Yu et al. 2025, §3.2: 0 &lt; |{o_i : o_i correct}| &lt; G): the indices of the
    /// groups whose rewards are not all equal. A group of equal rewards has zero advantage for every completion
    /// and so no gradient; DAPO drops it and samples more. <paramref name="rewards"/> holds the groups one after
    /// the other, <paramref name="groupSize"/> each.
    /// </summary>
    public static int[] GroupsWithDistinctRewards(ReadOnlySpan<float> rewards, int groupSize)
    {
        if (groupSize < 1 || rewards.Length % groupSize != 0)
            throw new ArgumentException($"{rewards.Length} rewards do not split into groups of {groupSize}", nameof(groupSize));
        var kept = new List<int>();
        for (var g = 0; g < rewards.Length / groupSize; g++)
        {
            var group = rewards.Slice(g * groupSize, groupSize);
            var first = group[0];
            var distinct = false;
            foreach (var r in group) distinct |= r != first;
            if (distinct) kept.Add(g);
        }
        return kept.ToArray();
    }

    /// <summary><see cref="GroupsWithDistinctRewards(ReadOnlySpan{float}, int)"/> for rewards [groups, G].</summary>
    public static int[] GroupsWithDistinctRewards(Tensor rewards)
    {
        Shapes.Rank(rewards, 2, nameof(rewards));
        using var scope = torch.NewDisposeScope();
        var host = rewards.detach().to(ScalarType.Float32, CPU).data<float>().ToArray();
        return GroupsWithDistinctRewards(host, (int)rewards.size(1));
    }

}
