namespace OnlineRl.Rewards;

/// <summary>The prompts of a run: an endless training stream and a fixed held-out set, with the task's reward.</summary>
public sealed class TaskSource
{
    private readonly Func<long, TaskItem> trainingItem;

    private TaskSource(Func<long, TaskItem> trainingItem, IReadOnlyList<TaskItem> heldOut, WeightedReward reward)
    {
        this.trainingItem = trainingItem;
        HeldOut = heldOut;
        Reward = reward;
    }

    /// <summary>Held-out problems for evaluation, never used for training.</summary>
    public IReadOnlyList<TaskItem> HeldOut { get; }

    /// <summary>The reward of this task.</summary>
    public WeightedReward Reward { get; }

    /// <summary>Training problem number <paramref name="index"/> (cycling through a finite dataset).</summary>
    public TaskItem Training(long index) => trainingItem(index);

    /// <summary>The synthetic "a+b=" task of <paramref name="seed"/>, rewarded by an exact match of the sum.</summary>
    public static TaskSource Addition(int maxDigits, long seed, int evalSize)
    {
        var task = new AdditionTask(maxDigits, seed);
        // Held-out problems are items 0..evalSize-1; training draws from far beyond them.
        var heldOut = task.Items(0, evalSize).ToList();
        var exact = new WeightedReward(new (IRewardFunction, double)[] { (new ExactAnswerReward(), 1.0) });
        return new TaskSource(i => task.Item(1_000_000 + i), heldOut, exact);
    }

    /// <summary>
    /// A JSONL dataset (e.g. GSM8K): the first <paramref name="evalSize"/> items (at most half of them) are held out,
    /// training cycles through the rest; rewarded by the numeric final answer plus a small "#### N" format reward.
    /// Skipped bad lines are reported to <paramref name="log"/> one by one and counted.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">A bad line with <see cref="BadLinePolicy.Reject"/> (the message reads
    /// "file:line: problem"), or no usable item at all.</exception>
    public static TaskSource Jsonl(string path, BadLinePolicy badLines, int evalSize, Action<string>? log = null)
    {
        var dataset = new JsonlDataset(path, badLines: badLines);
        var items = dataset.Read().ToList();
        foreach (var error in dataset.Errors) log?.Invoke($"skipped bad dataset line {error}");
        if (dataset.Errors.Count > 0) log?.Invoke($"skipped {dataset.Errors.Count} bad lines of {path}");
        var evalCount = Math.Min(evalSize, items.Count / 2);
        var training = items.Skip(evalCount).ToList();
        if (training.Count == 0) throw new InvalidDataException($"{path}: no usable training items");
        var numeric = new WeightedReward(new (IRewardFunction, double)[]
        {
            (new NumericAnswerReward(), 1.0), (new FormatReward(@"####\s*-?[\d,.]+", "format"), 0.1),
        });
        return new TaskSource(i => training[(int)(i % training.Count)], items.Take(evalCount).ToList(), numeric);
    }
}
