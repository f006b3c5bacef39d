using F = TorchSharp.torch.nn.functional;

namespace OnlineRl.Algorithms;

/// <summary>A preference pair built from one group: the indices (into the whole batch) of the chosen and rejected completions.</summary>
/// <param name="Group">The group (prompt) the pair comes from.</param>
/// <param name="Chosen">Batch index of the completion with the highest reward.</param>
/// <param name="Rejected">Batch index of the completion with the lowest reward.</param>
public readonly record struct DpoPair(int Group, int Chosen, int Rejected);

/// <summary>The preference loss of <see cref="Dpo.Loss"/>.</summary>
public enum DpoLossType
{
    /// <summary>DPO's −log σ(h) (Rafailov et al. 2023), with optional label smoothing (cDPO).</summary>
    Sigmoid,
    /// <summary>IPO's (h/β − 1/(2β))² (Azar et al. 2023).</summary>
    Ipo,
}

/// <summary>Settings of online DPO (<see cref="Dpo.Loss"/> and the update).</summary>
public sealed record DpoOptions
{
    /// <summary>β: the strength of the implicit KL constraint (IPO's τ).</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary>Sigmoid (DPO) or IPO.</summary>
    public DpoLossType LossType { get; init; } = DpoLossType.Sigmoid;

    /// <summary>ε of conservative DPO: the probability that a preference label is flipped (Sigmoid only).</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Drop the reference model: its log-probs are taken as 0 and need not be given.</summary>
    public bool ReferenceFree { get; init; }

    /// <summary>α of the SFT term α · NLL(chosen) (RPO, Pang et al. 2024); 0 turns it off.</summary>
    public double SftWeight { get; init; }
}

/// <summary>
/// Diagnostics of a DPO loss, means over pairs, with the implicit rewards r̂(y) = β (log π_θ(y) − log π_ref(y)).
/// </summary>
/// <param name="RewardAccuracy">Pairs with r̂(chosen) &gt; r̂(rejected).</param>
/// <param name="RewardMargin">Mean of r̂(chosen) − r̂(rejected).</param>
/// <param name="ChosenReward">Mean of r̂(chosen).</param>
/// <param name="RejectedReward">Mean of r̂(rejected).</param>
/// <param name="SftLoss">The NLL of the chosen completions (mean per-token NLL, averaged over pairs), even when its weight is 0.</param>
public sealed record DpoStats(double RewardAccuracy, double RewardMargin, double ChosenReward, double RejectedReward, double SftLoss);

/// <summary>A scalar loss to call <c>backward()</c> on, and its diagnostics.</summary>
/// <param name="Loss">The 0-dim loss, in the autograd graph of the policy log-probs.</param>
/// <param name="Stats">Diagnostics (already read to the host).</param>
public sealed record DpoLossResult(Tensor Loss, DpoStats Stats);

/// <summary>
/// Online DPO and its variants over preference pairs.
///
/// DPO (Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward
/// Model", eq. 7), with h = β [(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))]:
///     L_DPO = −log σ(h).
/// Conservative DPO (Mitchell 2023, "A note on DPO with noisy preferences &amp; relationship to IPO"): with labels
/// flipped with probability ε,
///     L_cDPO = −(1 − ε) log σ(h) − ε log σ(−h).
/// IPO (Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human Preferences",
/// the IPO loss), with h_π = log [π(y_w) π_ref(y_l) / (π(y_l) π_ref(y_w))] and τ = β:
///     L_IPO = (h_π − 1/(2τ))².
/// SFT term (RPO, Pang et al. 2024, "Iterative Reasoning Preference Optimization", the DPO + NLL loss):
///     + α · (−log π_θ(y_w) / |y_w|).
/// A sequence log-prob is the masked sum of its per-token log-probs. Losses are means over pairs.
///
/// One update (<see cref="Prepare"/>): each group gives the pair (highest reward, lowest reward), none on a tie
/// (<see cref="PairsFromGroups"/>); log π_ref of both once; each epoch is one pass over all pairs (no minibatches).
/// </summary>
/// <param name="options">β, loss type, label smoothing, reference-free, SFT weight.</param>
public sealed class Dpo(DpoOptions options) : IAlgorithm
{
    /// <summary>The settings.</summary>
    public DpoOptions Options { get; } = options;

    /// <inheritdoc />
    public bool NeedsReference => !Options.ReferenceFree;

    /// <inheritdoc />
    public bool NeedsValueHead => false;

    /// <summary>
    /// Online DPO pairs from groups of sampled completions: in each group the completion with the highest reward
    /// is chosen and the one with the lowest rejected (the first of equal ones); a group whose highest and lowest
    /// rewards tie gives no pair. <paramref name="rewards"/> holds the groups one after the other.
    /// </summary>
    public static DpoPair[] PairsFromGroups(ReadOnlySpan<float> rewards, int groupSize)
    {
        if (groupSize < 1 || rewards.Length % groupSize != 0)
            throw new ArgumentException($"{rewards.Length} rewards do not split into groups of {groupSize}", nameof(groupSize));
        var pairs = new List<DpoPair>();
        for (var g = 0; g < rewards.Length / groupSize; g++)
        {
            int best = g * groupSize, worst = g * groupSize;
            for (var i = g * groupSize + 1; i < (g + 1) * groupSize; i++)
            {
                if (rewards[i] > rewards[best]) best = i;
                if (rewards[i] < rewards[worst]) worst = i;
            }
            if (rewards[best] > rewards[worst]) pairs.Add(new DpoPair(g, best, worst));   // skip ties
        }
        return pairs.ToArray();
    }

    /// <summary>log π(y) = Σ_t m_t log π(y_t | y_&lt;t): [P, T] per-token log-probs to [P].</summary>
    public static Tensor SequenceLogProbs(Tensor perTokenLogProbs, Tensor mask)
    {
        Shapes.Rank(perTokenLogProbs, 2, nameof(perTokenLogProbs));
        Shapes.Same(perTokenLogProbs, mask, nameof(mask));
        return Masked.Sum(perTokenLogProbs, mask, dim: 1);
    }

    /// <summary>
    /// The DPO / cDPO / IPO loss over P pairs, plus the optional SFT term.
    /// </summary>
    /// <param name="chosenLogProbs">log π_θ per token of the chosen completions [P, T], in the autograd graph.</param>
    /// <param name="chosenMask">[P, T] completion mask of the chosen completions.</param>
    /// <param name="rejectedLogProbs">log π_θ per token of the rejected completions [P, T'].</param>
    /// <param name="rejectedMask">[P, T'] completion mask of the rejected completions.</param>
    /// <param name="refChosenLogProbs">log π_ref of the chosen completions: per token [P, T] (masked-summed here) or per sequence [P]; null only when reference-free.</param>
    /// <param name="refRejectedLogProbs">log π_ref of the rejected completions, likewise.</param>
    /// <param name="options">β, loss type, label smoothing, reference-free, SFT weight; null for the defaults.</param>
    public static DpoLossResult Loss(Tensor chosenLogProbs, Tensor chosenMask, Tensor rejectedLogProbs, Tensor rejectedMask,
        Tensor? refChosenLogProbs, Tensor? refRejectedLogProbs, DpoOptions? options = null)
    {
        options ??= new DpoOptions();
        if (options.LossType == DpoLossType.Ipo && options.LabelSmoothing != 0)
            throw new ArgumentException("label smoothing (cDPO) applies to the sigmoid loss only", nameof(options));
        if (!options.ReferenceFree && (refChosenLogProbs is null || refRejectedLogProbs is null))
            throw new ArgumentNullException(nameof(refChosenLogProbs), "reference log-probs are needed unless ReferenceFree is set");
        if (chosenLogProbs.size(0) != rejectedLogProbs.size(0))
            throw new ArgumentException($"{chosenLogProbs.size(0)} chosen but {rejectedLogProbs.size(0)} rejected completions", nameof(rejectedLogProbs));

        using var scope = torch.NewDisposeScope();
        var beta = options.Beta;
        var chosen = SequenceLogProbs(chosenLogProbs, chosenMask);               // log π_θ(y_w)
        var rejected = SequenceLogProbs(rejectedLogProbs, rejectedMask);         // log π_θ(y_l)
        var refChosen = options.ReferenceFree ? torch.zeros_like(chosen) : Reference(refChosenLogProbs!, chosenMask, chosen);
        var refRejected = options.ReferenceFree ? torch.zeros_like(rejected) : Reference(refRejectedLogProbs!, rejectedMask, rejected);

        // log-ratio difference: [log π_θ(y_w) − log π_θ(y_l)] − [log π_ref(y_w) − log π_ref(y_l)]  (IPO's h_π)
        var logits = (chosen - rejected) - (refChosen - refRejected);
        var losses = options.LossType switch
        {
            // −(1 − ε) log σ(βΔ) − ε log σ(−βΔ)   (ε = 0: DPO)
            DpoLossType.Sigmoid => F.logsigmoid(logits.Times(beta)).Times(-(1 - options.LabelSmoothing))
                                   - F.logsigmoid(logits.Times(-beta)).Times(options.LabelSmoothing),
            // (h_π − 1/(2τ))²
            DpoLossType.Ipo => logits.Minus(1 / (2 * beta)).Squared(),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.LossType, null),
        };
        var loss = losses.mean();

        // −log π_θ(y_w) / |y_w| per pair, averaged over pairs
        var nll = (-chosen / chosenMask.to(chosen.dtype).sum(1).clamp_min(HeldScalars.One)).mean();
        if (options.SftWeight != 0) loss = loss.Plus(nll.Times(options.SftWeight));       // + α NLL

        DpoStats stats;
        using (torch.no_grad())
        {
            var chosenReward = (chosen - refChosen).Times(beta);                       // r̂(y_w) = β (log π_θ − log π_ref)
            var rejectedReward = (rejected - refRejected).Times(beta);                 // r̂(y_l)
            var values = torch.stack(new[]
            {
                chosenReward.gt(rejectedReward).to(chosen.dtype).mean(),
                (chosenReward - rejectedReward).mean(),
                chosenReward.mean(),
                rejectedReward.mean(),
                nll,
            }).to(ScalarType.Float64, CPU).data<double>().ToArray();
            stats = new DpoStats(values[0], values[1], values[2], values[3], values[4]);
        }
        return new DpoLossResult(scope.MoveToOuter(loss), stats);
    }

    // Reference log-probs per token [P, T] are summed over the mask; per sequence [P] are used as they are.
    private static Tensor Reference(Tensor reference, Tensor mask, Tensor policy)
    {
        var r = reference.detach();
        if (r.dim() == 1)
        {
            Shapes.Same(policy, r, "reference log-probs");
            return r.to(policy.dtype);
        }
        return SequenceLogProbs(r, mask);
    }

    /// <inheritdoc />
    public IAlgorithmUpdate? Prepare(Rollouts batch, IPolicyModels models, IDictionary<string, double> metrics)
    {
        var pairs = PairsFromGroups(batch.Rewards.data<float>().ToArray(), batch.GroupSize);
        metrics["pairs"] = pairs.Length;
        if (pairs.Length == 0) return null;
        var device = batch.Ids.device;
        var chosenRows = torch.tensor(pairs.Select(p => (long)p.Chosen).ToArray(), device: device);
        var rejectedRows = torch.tensor(pairs.Select(p => (long)p.Rejected).ToArray(), device: device);
        var rows = torch.cat(new[] { chosenRows, rejectedRows });                 // the chosen, then the rejected
        var ids = batch.Ids.index_select(0, rows);
        var attention = batch.AttentionMask.index_select(0, rows);
        return new Update(this, pairs.Length, ids, attention, batch.CompletionMask.index_select(0, rows), models.Reference(ids, attention));
    }

    private sealed record Update(Dpo Algorithm, int Pairs, Tensor Ids, Tensor Attention, Tensor Mask, Tensor? ReferenceLogProbs) : IAlgorithmUpdate
    {
        public int? MinibatchGroups => null;

        public MinibatchLoss Loss(Tensor? rows, IPolicyModels models)
        {
            if (rows is not null) throw new ArgumentException("online DPO takes no minibatches", nameof(rows));
            var n = Pairs;
            var (logProbs, _) = models.Policy(Ids, Attention);
            var result = Dpo.Loss(logProbs.narrow(0, 0, n), Mask.narrow(0, 0, n), logProbs.narrow(0, n, n), Mask.narrow(0, n, n),
                ReferenceLogProbs?.narrow(0, 0, n), ReferenceLogProbs?.narrow(0, n, n), Algorithm.Options);
            return new MinibatchLoss(result.Loss, [("loss", result.Loss.ItemAsDouble())],
                [("dpo_reward_accuracy", result.Stats.RewardAccuracy), ("dpo_reward_margin", result.Stats.RewardMargin)]);
        }
    }
}
