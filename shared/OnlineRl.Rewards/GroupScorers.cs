using OnlineRl.Contracts;

namespace OnlineRl.Rewards;

/// <summary>Computes the rewards of one rollout group: a total per completion plus named components.</summary>
public interface IGroupScorer
{
    /// <summary>Version string written into every scored group (changes when the scoring changes).</summary>
    string Version { get; }

    /// <summary>Totals (one per completion) and components (name to one value per completion).</summary>
    (float[] Totals, Dictionary<string, float[]> Components) Score(RolloutGroup group);
}

/// <summary>Rule (verifiable) rewards, a weighted sum of components.</summary>
public sealed class RuleScorer(WeightedReward reward) : IGroupScorer
{
    /// <inheritdoc />
    public string Version => "rules-1";

    /// <inheritdoc />
    public (float[] Totals, Dictionary<string, float[]> Components) Score(RolloutGroup group)
    {
        var n = group.Completions.Count;
        var totals = new float[n];
        var components = reward.ComponentNames.ToDictionary(name => name, _ => new float[n]);
        for (var i = 0; i < n; i++)
        {
            var completion = group.Completions[i];
            var (total, parts) = reward.Score(new RewardInput(group.Prompt.Text, completion.Text, group.Prompt.Metadata, completion.TokenIds.Count));
            totals[i] = (float)total;
            foreach (var (name, value) in parts) components[name][i] = (float)value;
        }
        return (totals, components);
    }
}
