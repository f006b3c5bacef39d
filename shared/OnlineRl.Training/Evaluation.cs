using OnlineRl.Model;

namespace OnlineRl.Training;

/// <summary>Held-out evaluation of a policy on a verifiable task.</summary>
public static class Evaluation
{
    /// <summary>
    /// Fraction of <paramref name="prompts"/> whose greedy completion, decoded, equals the expected answer
    /// (after trimming) — the accuracy a verifiable reward would give with temperature 0.
    /// </summary>
    public static double GreedyAccuracy(TransformerModel model, IReadOnlyList<int[]> prompts, IReadOnlyList<string> answers,
        Func<IReadOnlyList<int>, string> decode, int maxNewTokens, IReadOnlyList<int> stopTokenIds, int batchSize = 128)
    {
        if (prompts.Count != answers.Count) throw new ArgumentException("one answer per prompt is needed");
        var options = new SamplingOptions { MaxNewTokens = maxNewTokens, Temperature = 0, StopTokenIds = stopTokenIds };
        var stops = stopTokenIds.ToHashSet();
        var correct = 0;
        for (var start = 0; start < prompts.Count; start += batchSize)
        {
            var batch = prompts.Skip(start).Take(batchSize).ToList();
            var completions = Sampler.Generate(model, batch, options);
            for (var i = 0; i < completions.Count; i++)
            {
                var text = decode(completions[i].TokenIds.Where(t => !stops.Contains(t)).ToArray());
                if (text.Trim() == answers[start + i].Trim()) correct++;
            }
        }
        return (double)correct / prompts.Count;
    }
}
