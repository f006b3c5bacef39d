using OnlineRl.Algorithms;
using OnlineRl.Model;

namespace OnlineRl.Training;

/// <summary>A preference: for one prompt, a completion people (or a rule) preferred over another.</summary>
public sealed record PreferencePair(int[] Prompt, int[] Chosen, int[] Rejected);

/// <summary>Settings of reward-model training.</summary>
public sealed record RewardModelOptions
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 200;
    /// <summary>Pairs per step.</summary>
    public int PairsPerStep { get; init; } = 64;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 3e-4;
    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 10;
    /// <summary>Gradient-norm clip (0: off).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Seed of the pair order.</summary>
    public long Seed { get; init; }
}

/// <summary>
/// A reward model: the transformer with a scalar reward head, the reward of a sequence being the head's
/// output at its last token. Trained with the Bradley-Terry loss -log sigmoid(r(chosen) - r(rejected))
/// (Ouyang et al. 2022, InstructGPT eq. 1; the loss itself is in <see cref="RewardModelLoss"/>).
/// </summary>
public static class RewardModel
{
    /// <summary>Rewards [N] of prompt + completion sequences under <paramref name="model"/> (differentiable).</summary>
    public static Tensor SequenceRewards(TransformerModel model, IReadOnlyList<(int[] Prompt, int[] Completion)> sequences)
    {
        using var scope = torch.NewDisposeScope();
        var width = sequences.Max(s => s.Prompt.Length + s.Completion.Length);
        var ids = new long[sequences.Count * width];
        var mask = new long[sequences.Count * width];
        var last = new long[sequences.Count];
        for (var i = 0; i < sequences.Count; i++)
        {
            var full = sequences[i].Prompt.Concat(sequences[i].Completion).ToArray();
            for (var j = 0; j < full.Length; j++)
            {
                ids[i * width + j] = full[j];
                mask[i * width + j] = 1;
            }
            last[i] = full.Length - 1;
        }
        var shape = new long[] { sequences.Count, width };
        var device = model.Device;
        var perToken = model.Rewards(model.Hidden(torch.tensor(ids, shape, device: device), torch.tensor(mask, shape, device: device)));
        var rewards = perToken.gather(1, torch.tensor(last, device: device).unsqueeze(1)).squeeze(1).to(ScalarType.Float32);
        return scope.MoveToOuter(rewards);
    }

    /// <summary>Rewards of sequences as numbers (no gradient), in batches.</summary>
    public static float[] Score(TransformerModel model, IReadOnlyList<(int[] Prompt, int[] Completion)> sequences, int batchSize = 32)
    {
        using var noGrad = torch.no_grad();
        var result = new List<float>();
        for (var start = 0; start < sequences.Count; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            result.AddRange(SequenceRewards(model, sequences.Skip(start).Take(batchSize).ToList()).data<float>().ToArray());
        }
        return result.ToArray();
    }

    /// <summary>Fraction of pairs whose chosen completion gets the higher reward.</summary>
    public static double PairAccuracy(TransformerModel model, IReadOnlyList<PreferencePair> pairs)
    {
        var chosen = Score(model, pairs.Select(p => (p.Prompt, p.Chosen)).ToList());
        var rejected = Score(model, pairs.Select(p => (p.Prompt, p.Rejected)).ToList());
        return chosen.Zip(rejected).Count(x => x.First > x.Second) / (double)pairs.Count;
    }

    /// <summary>Trains the reward head (and whatever else requires gradients) on <paramref name="pairs"/>.</summary>
    public static IReadOnlyList<(double Loss, double Accuracy)> Train(TransformerModel model, IReadOnlyList<PreferencePair> pairs,
        RewardModelOptions options, Action<int, double, double>? progress = null)
    {
        if (model.score is null) throw new ArgumentException("the model needs a reward head (ModelHeads.Reward)", nameof(model));
        if (pairs.Count == 0) throw new ArgumentException("no preference pairs", nameof(pairs));
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = new ScheduledAdamW(trainable,
            new WarmupCosineSchedule(options.LearningRate, options.WarmupSteps, options.Steps, options.LearningRate * 0.1), weightDecay: 0);
        var random = new Random((int)options.Seed);
        var history = new List<(double, double)>();
        model.train();
        for (var step = 1; step <= options.Steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            var batch = Enumerable.Range(0, options.PairsPerStep).Select(_ => pairs[random.Next(pairs.Count)]).ToList();
            var rewards = SequenceRewards(model, batch.Select(p => (p.Prompt, p.Chosen)).Concat(batch.Select(p => (p.Prompt, p.Rejected))).ToList());
            var result = RewardModelLoss.BradleyTerry(rewards.narrow(0, 0, batch.Count), rewards.narrow(0, batch.Count, batch.Count));
            optimizer.ZeroGrad();
            result.Loss.backward();
            if (options.MaxGradNorm > 0) torch.nn.utils.clip_grad_norm_(trainable, options.MaxGradNorm);
            optimizer.Step();
            var loss = result.Loss.ItemAsDouble();
            history.Add((loss, result.Accuracy));
            progress?.Invoke(step, loss, result.Accuracy);
        }
        return history;
    }
}
