namespace OnlineRl.Rewards.Tests;

public class TaskSourceTests
{
    [Fact]
    public void AdditionHoldsOutTheFirstItemsAndTrainsFarBeyondThem()
    {
        var source = TaskSource.Addition(maxDigits: 2, seed: 7, evalSize: 20);
        var task = new AdditionTask(2, 7);
        Assert.Equal(task.Items(0, 20), source.HeldOut);
        Assert.Equal(task.Item(1_000_003), source.Training(3));
        Assert.Equal(["correct"], source.Reward.ComponentNames);
    }

    [Fact]
    public void JsonlHoldsOutAtMostHalfCyclesTheRestAndReportsSkippedLines()
    {
        var path = Path.Combine(Path.GetTempPath(), $"onlinerl-tasks-{Guid.NewGuid():N}.jsonl");
        try
        {
            File.WriteAllLines(path, Enumerable.Range(1, 5).Select(i => $$"""{"question": "q{{i}}", "answer": "#### {{i}}"}""")
                .Append("""{"question": "q6"}"""));
            var log = new List<string>();
            var source = TaskSource.Jsonl(path, BadLinePolicy.Skip, evalSize: 10, log.Add);
            // evalSize 10 of 5 usable items: half (2) held out, training cycles through the other 3.
            Assert.Equal(["1", "2"], source.HeldOut.Select(i => i.Answer));
            Assert.Equal(["3", "4", "5", "3"], Enumerable.Range(0, 4).Select(i => source.Training(i).Answer));
            Assert.Equal(["correct", "format"], source.Reward.ComponentNames);
            Assert.Equal([$"skipped bad dataset line {path}:6: field 'answer': missing", $"skipped 1 bad lines of {path}"], log);

            var error = Assert.Throws<InvalidDataException>(() => TaskSource.Jsonl(path, BadLinePolicy.Reject, evalSize: 1));
            Assert.StartsWith($"{path}:6:", error.Message, StringComparison.Ordinal);

            File.WriteAllText(path, "\n");
            error = Assert.Throws<InvalidDataException>(() => TaskSource.Jsonl(path, BadLinePolicy.Reject, evalSize: 1));
            Assert.Equal($"{path}: no usable training items", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
