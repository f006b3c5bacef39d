
namespace OnlineRl.Algorithms;

/// <summary>Which update the learner runs.</summary>
public enum AlgorithmKind
{
    /// <summary>GRPO / DAPO / Dr. GRPO (group-relative advantages, clipped surrogate): <see cref="Algorithms.Grpo"/>.</summary>
    Grpo,
    /// <summary>PPO with a value head, GAE and a KL-penalised reward: <see cref="Algorithms.Ppo"/>.</summary>
    Ppo,
    /// <summary>Online DPO on best/worst pairs of each group: <see cref="Algorithms.Dpo"/>.</summary>
    Dpo,
}

/// <summary>
/// The scored groups of one learner step as tensors. Row i is completion <c>i % G</c> of group <c>i / G</c>,
/// prompt + completion right-padded to L tokens. Per-token tensors are [B, L-1]: entry t belongs to the token at
/// t+1 (the one predicted from position t).
/// </summary>
/// <param name="Ids">Token ids [B, L].</param>
/// <param name="AttentionMask">1 on real tokens [B, L].</param>
/// <param name="CompletionMask">1 on completion tokens [B, L-1].</param>
/// <param name="BehaviourLogProbs">log π_behav of the sampled tokens, from the generators [B, L-1].</param>
/// <param name="Rewards">Rewards [groups, G].</param>
/// <param name="UpdatesPerBatch">Optimizer steps the learner takes on this batch (epochs × minibatches): with more than one the
/// pre-update policy must anchor the clip.</param>
public sealed record Rollouts(Tensor Ids, Tensor AttentionMask, Tensor CompletionMask, Tensor BehaviourLogProbs, Tensor Rewards, int UpdatesPerBatch)
{
    /// <summary>Number of groups (prompts).</summary>
    public int GroupCount => (int)Rewards.size(0);

    /// <summary>Completions per group (G).</summary>
    public int GroupSize => (int)Rewards.size(1);
}

/// <summary>What an algorithm asks of the learner's models: per-token log-probs (and values) of rows of a batch.</summary>
public interface IPolicyModels
{
    /// <summary>
    /// log π_θ of each row's tokens [R, L-1] at the sampling temperature, and with <paramref name="withValues"/> the value
    /// head's V [R, L-1] (else null). In the autograd graph unless called under <c>torch.no_grad()</c>.
    /// </summary>
    (Tensor LogProbs, Tensor? Values) Policy(Tensor ids, Tensor attentionMask, bool withValues = false);

    /// <summary>log π_ref [R, L-1] without gradients; null when the learner holds no reference (the settings need none).</summary>
    Tensor? Reference(Tensor ids, Tensor attentionMask);
}

/// <summary>
/// One RL algorithm as the learner runs it: per batch, <see cref="Prepare"/> computes what stays constant during
/// the update (rows, advantages, old and reference log-probs); the learner's shared loop then asks the returned
/// <see cref="IAlgorithmUpdate"/> for the loss of each minibatch of each epoch and does backward, clipping and
/// the optimizer step itself.
/// </summary>
public interface IAlgorithm
{
    /// <summary>Whether these settings need the frozen reference policy.</summary>
    bool NeedsReference { get; }

    /// <summary>Whether the policy needs a value head.</summary>
    bool NeedsValueHead { get; }

    /// <summary>
    /// Runs once per learner step (its forward passes without gradients). Returns null when the batch carries no
    /// learning signal (the step is skipped). May add metrics (e.g. groups filtered out, pairs formed).
    /// </summary>
    IAlgorithmUpdate? Prepare(Rollouts batch, IPolicyModels models, IDictionary<string, double> metrics);
}

/// <summary>The prepared update of one batch (see <see cref="IAlgorithm.Prepare"/>).</summary>
public interface IAlgorithmUpdate
{
    /// <summary>
    /// The number of groups the learner splits into minibatches (whole groups stay together: prepared rows g·G to
    /// g·G + G − 1 are group g); null: each epoch is one pass over all prepared rows.
    /// </summary>
    int? MinibatchGroups { get; }

    /// <summary>
    /// The loss of one minibatch; <paramref name="rows"/> index the prepared rows (null: all of them).
    /// </summary>
    MinibatchLoss Loss(Tensor? rows, IPolicyModels models);
}

/// <summary>One minibatch's loss and its numbers.</summary>
/// <param name="Loss">The 0-dim loss to differentiate.</param>
/// <param name="Averaged">Metrics averaged over the step's minibatches (e.g. "loss").</param>
/// <param name="Last">Metrics reported from the step's last minibatch (e.g. "kl", "clip_fraction").</param>
public sealed record MinibatchLoss(Tensor Loss, IReadOnlyList<(string Name, double Value)> Averaged, IReadOnlyList<(string Name, double Value)> Last);
