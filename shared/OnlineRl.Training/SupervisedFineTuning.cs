using System.Diagnostics;
using OnlineRl.Model;

namespace OnlineRl.Training;

/// <summary>Settings of a supervised fine-tuning run.</summary>
public sealed record SftOptions
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 450;
    /// <summary>Examples drawn (with replacement) per step.</summary>
    public int ExamplesPerStep { get; init; } = 256;
    /// <summary>Tokens per packed row.</summary>
    public int RowLength { get; init; } = 128;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Linear warm-up steps before the cosine decay.</summary>
    public int WarmupSteps { get; init; } = 20;
    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Gradient-norm clip (0: off).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Seed of the example order.</summary>
    public long Seed { get; init; }
    /// <summary>Also learn to predict prompt tokens.</summary>
    public bool TrainOnPrompt { get; init; }
}

/// <summary>One step's numbers.</summary>
/// <param name="Step">1-based step.</param>
/// <param name="Loss">Mean cross entropy per target token.</param>
/// <param name="LearningRate">Rate used.</param>
/// <param name="GradNorm">Gradient norm before clipping.</param>
/// <param name="TokensPerSecond">Packed tokens processed per second in this step.</param>
public sealed record SftStepStats(int Step, double Loss, double LearningRate, double GradNorm, double TokensPerSecond);

/// <summary>
/// Supervised fine-tuning: next-token cross entropy on completion tokens, examples packed into rows
/// (<see cref="SequencePacker"/>), AdamW with warm-up + cosine decay and gradient clipping. Trains
/// whatever parameters require gradients (all of them, or only LoRA adapters once attached).
/// </summary>
public static class SupervisedFineTuning
{
    /// <summary>Trains <paramref name="model"/> on <paramref name="examples"/>; reports each step to <paramref name="progress"/>.</summary>
    public static IReadOnlyList<SftStepStats> Train(TransformerModel model, IReadOnlyList<SftExample> examples, SftOptions options,
        Action<SftStepStats>? progress = null)
    {
        if (examples.Count == 0) throw new ArgumentException("no training examples", nameof(examples));
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        if (trainable.Count == 0) throw new InvalidOperationException("the model has no trainable parameters");
        using var optimizer = new ScheduledAdamW(trainable,
            new WarmupCosineSchedule(options.LearningRate, options.WarmupSteps, options.Steps, options.LearningRate * 0.1), options.WeightDecay);
        var random = new Random((int)options.Seed);
        var history = new List<SftStepStats>();
        model.train();
        for (var step = 0; step < options.Steps; step++)
        {
            var clock = Stopwatch.StartNew();
            using var scope = torch.NewDisposeScope();
            var drawn = Enumerable.Range(0, options.ExamplesPerStep).Select(_ => examples[random.Next(examples.Count)]).ToList();
            using var batch = SequencePacker.Pack(drawn, options.RowLength, model.Device, options.TrainOnPrompt);
            var lr = optimizer.LearningRate;
            optimizer.ZeroGrad();
            var logits = model.Logits(model.Hidden(batch.Ids, batch.Mask, segmentIds: batch.Segments, segmentPositions: batch.Positions));
            var loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch.Targets.reshape(-1),
                ignore_index: SequencePacker.Ignore);
            loss.backward();
            var norm = options.MaxGradNorm > 0 ? torch.nn.utils.clip_grad_norm_(trainable, options.MaxGradNorm) : double.NaN;
            optimizer.Step();
            var stats = new SftStepStats(step + 1, loss.ItemAsDouble(), lr, norm, batch.Ids.numel() / clock.Elapsed.TotalSeconds);
            history.Add(stats);
            progress?.Invoke(stats);
        }
        return history;
    }
}
