using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Rewards;

namespace OnlineRl.Pipeline;

/// <summary>Attaches rewards to rollout groups.</summary>
public sealed class ScorerWorker(IEventBus bus, IGroupScorer scorer, string runId, string scorerId, LedgerWriter? ledger = null)
{
    private readonly Publisher publisher = new(bus);

    /// <summary>Runs until cancelled.</summary>
    public Task RunAsync(CancellationToken cancellationToken)
    {
        var consumer = new Consumer<RolloutGroup>(bus, Topics.Rollouts, "scorers", scorerId,
            new ConsumerOptions { ServiceId = scorerId, Stage = "scorer", RunId = runId });
        return consumer.RunAsync(async (group, _, ct) =>
        {
            var (totals, components) = scorer.Score(group);
            PipelineMetrics.Shared.Scored(totals, components);
            var scored = new ScoredGroup { Rollout = group, ScorerId = scorerId, ScorerVersion = scorer.Version };
            scored.Rewards.AddRange(totals);
            foreach (var (name, values) in components)
            {
                var list = new FloatList();
                list.Values.AddRange(values);
                scored.RewardComponents[name] = list;
            }
            await publisher.PublishAsync(Topics.Scored, scored.Stamp(runId), group.Prompt.PromptId, cancellationToken: ct).ConfigureAwait(false);
            ledger?.Write(LedgerEvent.Scored, group.Prompt.PromptId);
        }, cancellationToken);
    }
}
