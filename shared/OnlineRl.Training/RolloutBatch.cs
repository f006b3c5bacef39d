
namespace OnlineRl.Training;

/// <summary>One sampled completion as the learner sees it.</summary>
/// <param name="Tokens">Generated token ids.</param>
/// <param name="BehaviourLogProbs">log pi_behaviour of each token, from the generator.</param>
/// <param name="Reward">Scalar reward from the scorer.</param>
public sealed record ScoredCompletion(int[] Tokens, float[] BehaviourLogProbs, double Reward);

/// <summary>The G completions of one prompt with their rewards.</summary>
/// <param name="Id">Rollout id (for de-duplication and the ledger).</param>
/// <param name="Prompt">Prompt token ids.</param>
/// <param name="Completions">The group.</param>
/// <param name="PolicyVersion">Weights version the generator used.</param>
public sealed record ScoredGroupData(string Id, int[] Prompt, IReadOnlyList<ScoredCompletion> Completions, long PolicyVersion);

/// <summary>
/// Groups flattened into right-padded token tensors for a learner step. Row i is completion
/// <c>i % G</c> of group <c>i / G</c>. Per-token tensors have length L-1: entry t belongs to the token at
/// t+1 (the one predicted from position t), so they line up with <see cref="Model.LogProbScorer.TokenLogProbs"/>.
/// </summary>
public sealed class RolloutBatch : IDisposable
{
    private RolloutBatch() { }

    /// <summary>Prompt + completion ids [B, L] (padding 0).</summary>
    public Tensor Ids { get; private init; } = null!;
    /// <summary>1 for real tokens [B, L].</summary>
    public Tensor AttentionMask { get; private init; } = null!;
    /// <summary>1 where entry t is a completion token [B, L-1], float32.</summary>
    public Tensor CompletionMask { get; private init; } = null!;
    /// <summary>Behaviour log-probs aligned with <see cref="CompletionMask"/> [B, L-1].</summary>
    public Tensor BehaviourLogProbs { get; private init; } = null!;
    /// <summary>Rewards [G_groups, G] (groups must have equal sizes), float32.</summary>
    public Tensor Rewards { get; private init; } = null!;
    /// <summary>Index of each row's last completion entry in the [B, L-1] layout.</summary>
    public long[] LastCompletionIndex { get; private init; } = Array.Empty<long>();
    /// <summary>Number of groups.</summary>
    public int GroupCount { get; private init; }
    /// <summary>Completions per group.</summary>
    public int GroupSize { get; private init; }
    /// <summary>Completion tokens in the batch.</summary>
    public long CompletionTokens { get; private init; }

    /// <summary>Builds the tensors on <paramref name="device"/>.</summary>
    public static RolloutBatch Build(IReadOnlyList<ScoredGroupData> groups, Device device)
    {
        if (groups.Count == 0) throw new ArgumentException("no groups", nameof(groups));
        var g = groups[0].Completions.Count;
        if (g == 0 || groups.Any(x => x.Completions.Count != g))
            throw new ArgumentException("every group needs the same, non-zero number of completions", nameof(groups));
        foreach (var group in groups)
            foreach (var c in group.Completions)
                if (c.Tokens.Length == 0 || c.Tokens.Length != c.BehaviourLogProbs.Length)
                    throw new ArgumentException($"rollout {group.Id}: a completion is empty or its log-probs do not match its tokens", nameof(groups));
        var rows = groups.Count * g;
        var length = groups.Max(x => x.Prompt.Length + x.Completions.Max(c => c.Tokens.Length));
        var ids = new long[rows * length];
        var attention = new long[rows * length];
        var completionMask = new float[rows * (length - 1)];
        var behaviour = new float[rows * (length - 1)];
        var rewards = new float[rows];
        var last = new long[rows];
        long tokens = 0;
        for (var i = 0; i < groups.Count; i++)
        {
            var prompt = groups[i].Prompt;
            for (var j = 0; j < g; j++)
            {
                var row = i * g + j;
                var completion = groups[i].Completions[j];
                for (var t = 0; t < prompt.Length; t++)
                {
                    ids[row * length + t] = prompt[t];
                    attention[row * length + t] = 1;
                }
                for (var k = 0; k < completion.Tokens.Length; k++)
                {
                    var at = prompt.Length + k;
                    ids[row * length + at] = completion.Tokens[k];
                    attention[row * length + at] = 1;
                    completionMask[row * (length - 1) + at - 1] = 1;
                    behaviour[row * (length - 1) + at - 1] = completion.BehaviourLogProbs[k];
                }
                last[row] = prompt.Length + completion.Tokens.Length - 2;
                rewards[row] = (float)completion.Reward;
                tokens += completion.Tokens.Length;
            }
        }
        return new RolloutBatch
        {
            Ids = torch.tensor(ids, new long[] { rows, length }, device: device).DetachFromDisposeScope(),
            AttentionMask = torch.tensor(attention, new long[] { rows, length }, device: device).DetachFromDisposeScope(),
            CompletionMask = torch.tensor(completionMask, new long[] { rows, length - 1 }, device: device).DetachFromDisposeScope(),
            BehaviourLogProbs = torch.tensor(behaviour, new long[] { rows, length - 1 }, device: device).DetachFromDisposeScope(),
            Rewards = torch.tensor(rewards, new long[] { groups.Count, g }, device: device).DetachFromDisposeScope(),
            LastCompletionIndex = last,
            GroupCount = groups.Count,
            GroupSize = g,
            CompletionTokens = tokens,
        };
    }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        Ids.Dispose();
        AttentionMask.Dispose();
        CompletionMask.Dispose();
        BehaviourLogProbs.Dispose();
        Rewards.Dispose();
    }
}
