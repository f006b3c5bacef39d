using OnlineRl.Contracts;
using OnlineRl.Model;
using OnlineRl.Rewards;

namespace OnlineRl.Pipeline;

/// <summary>
/// A learned reward: the reward model's score of each prompt + completion (component "reward_model"),
/// optionally added to rule rewards with a weight.
/// </summary>
public sealed class RewardModelScorer(TransformerModel rewardModel, string modelName, RuleScorer? rules = null, double modelWeight = 1.0) : IGroupScorer
{
    private readonly object gate = new();

    /// <inheritdoc />
    public string Version => $"reward-model:{modelName}" + (rules is null ? "" : "+" + rules.Version);

    /// <inheritdoc />
    public (float[] Totals, Dictionary<string, float[]> Components) Score(RolloutGroup group)
    {
        var sequences = group.Completions.Select(c => (group.Prompt.TokenIds.ToArray(), c.TokenIds.ToArray())).ToList();
        float[] learned;
        lock (gate) learned = OnlineRl.Training.RewardModel.Score(rewardModel, sequences);
        var (totals, components) = rules?.Score(group) ?? (new float[learned.Length], new Dictionary<string, float[]>());
        for (var i = 0; i < learned.Length; i++) totals[i] += (float)(modelWeight * learned[i]);
        components["reward_model"] = learned;
        return (totals, components);
    }
}
