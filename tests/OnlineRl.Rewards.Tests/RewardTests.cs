namespace OnlineRl.Rewards.Tests;

public class RewardTests
{
    private static readonly IReadOnlyDictionary<string, string> Answer72 = new Dictionary<string, string> { ["answer"] = "72" };

    private static RewardInput Input(string completion, IReadOnlyDictionary<string, string>? metadata = null, int tokens = 10) =>
        new("prompt", completion, metadata ?? Answer72, tokens);

    /// <summary>The folder ../shared/data/gsm8k beside the checkout (CI has it).</summary>
    internal static string Gsm8k(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data", "gsm8k", file);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"GSM8K file {file} not found in a shared/data/gsm8k folder above {AppContext.BaseDirectory}");
    }

    [Theory]
    [InlineData("so the answer is #### 72", 1.0)]
    [InlineData("#### 72.", 1.0)]
    [InlineData("#### $72.00", 1.0)]
    [InlineData("She has 70 then 2 more: 72", 1.0)]
    [InlineData("#### 72 but maybe 71", 1.0)]
    [InlineData("#### 71", 0.0)]
    [InlineData("no number here", 0.0)]
    [InlineData("72 #### 7", 0.0)]
    public void NumericAnswerFollowsGsm8kConventions(string completion, double expected) =>
        Assert.Equal(expected, new NumericAnswerReward().Score(Input(completion)));

    [Fact]
    public void ThousandsSeparatorsAndNegativesParse()
    {
        Assert.Equal(1234.5m, NumericAnswerReward.ParseNumber("1,234.50"));
        Assert.Equal(-3m, NumericAnswerReward.ExtractAnswer("the result is -3"));
        Assert.Null(NumericAnswerReward.ExtractAnswer("72 apples", requireHashMarker: true));
    }

    [Fact]
    public void EveryGsm8kReferenceAnswerScoresOne()
    {
        var reward = new NumericAnswerReward(requireHashMarker: true);
        foreach (var file in new[] { "train.jsonl", "test.jsonl" })
        {
            var dataset = new JsonlDataset(Gsm8k(file));
            var items = dataset.Read().ToList();
            Assert.Empty(dataset.Errors);
            Assert.Equal(file == "train.jsonl" ? 7473 : 1319, items.Count);
            // The dataset's own worked solution must be judged correct against the extracted answer.
            var raw = File.ReadLines(Gsm8k(file)).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("answer").GetString()!).ToList();
            for (var i = 0; i < items.Count; i++)
                Assert.Equal(1.0, reward.Score(new RewardInput(items[i].Prompt, raw[i], new Dictionary<string, string> { ["answer"] = items[i].Answer }, 100)));
        }
    }

    [Fact]
    public void BadDatasetLinesAreReportedWithFileAndLineAndRejectedOrSkipped()
    {
        var path = Path.Combine(Path.GetTempPath(), $"onlinerl-bad-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, new[]
        {
            """{"question": "q1", "answer": "x #### 5"}""",
            """{"question": "q2" """,
            """{"answer": "#### 3"}""",
            """{"question": "q4", "answer": "no marker but text"}""",
            """{"question": "q5", "answer": "#### nothing"}""",
            """{"question": "", "answer": "#### 6"}""",
            """{"question": 7, "answer": "#### 7"}""",
            """{"question": "q8", "answer": ["#### 8"]}""",
            """[1, 2]""",
            "",
            """{"question": "q11", "answer": " 1,234 "}""",
        });
        try
        {
            var skipping = new JsonlDataset(path, badLines: BadLinePolicy.Skip);
            var items = skipping.Read().ToList();
            Assert.Equal(new[] { "5", "1234" }, items.Select(i => i.Answer));
            Assert.Equal(new long[] { 0, 1 }, items.Select(i => i.Index));
            var reasons = skipping.Errors.ToDictionary(e => e.Line, e => e.Reason);
            Assert.Equal(new long[] { 2, 3, 4, 5, 6, 7, 8, 9 }, reasons.Keys);
            Assert.StartsWith("invalid JSON", reasons[2], StringComparison.Ordinal);
            Assert.Equal("field 'question': missing", reasons[3]);
            Assert.Equal("field 'answer': no final answer (expected '#### N' or a number)", reasons[4]);
            Assert.Equal("field 'answer': no number after '####'", reasons[5]);
            Assert.Equal("field 'question': empty", reasons[6]);
            Assert.Equal("field 'question': a Number, not a string", reasons[7]);
            Assert.Equal("field 'answer': a Array, not a string", reasons[8]);
            Assert.Equal("not a JSON object (a Array)", reasons[9]);
            Assert.Equal($"{path}:3: field 'question': missing", skipping.Errors[1].ToString());

            // Reject is the default: the first bad line stops the read, named by file and line.
            var error = Assert.Throws<InvalidDataException>(() => new JsonlDataset(path).Read().ToList());
            Assert.StartsWith($"{path}:2: invalid JSON", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void FormatLengthAndWeightedCombination()
    {
        var combined = new WeightedReward(new (IRewardFunction, double)[]
        {
            (new NumericAnswerReward(), 1.0), (new FormatReward(@"####\s*-?\d"), 0.1), (new LengthPenalty(20, 40), 0.5),
        });
        var (total, parts) = combined.Score(Input("#### 72", tokens: 30));
        Assert.Equal(1.0, parts["correct"]);
        Assert.Equal(1.0, parts["format"]);
        Assert.Equal(-0.5, parts["length"]);
        Assert.Equal(1.0 + 0.1 - 0.25, total, 12);
        Assert.Throws<ArgumentException>(() => new WeightedReward(new (IRewardFunction, double)[] { (new ExactAnswerReward(), 1), (new NumericAnswerReward(), 1) }));
        Assert.Equal(-1.0, new LengthPenalty(20, 40).Score(Input("x", tokens: 100)));
    }

    private static readonly string[] PinnedFirstProblems = { "323+4=", "1+58=", "190+62=" };

    [Fact]
    public void AdditionTaskIsDeterministicAndVerifiable()
    {
        var task = new AdditionTask(maxDigits: 3, seed: 5);
        var items = task.Items(0, 500).ToList();
        Assert.Equal(items, new AdditionTask(3, 5).Items(0, 500).ToList());
        Assert.NotEqual(items.Select(i => i.Prompt), new AdditionTask(3, 6).Items(0, 500).Select(i => i.Prompt));
        var reward = new ExactAnswerReward();
        foreach (var item in items)
        {
            var parts = item.Prompt.TrimEnd('=').Split('+').Select(long.Parse).ToArray();
            Assert.InRange(parts[0], 0, 999);
            Assert.InRange(parts[1], 0, 999);
            Assert.Equal((parts[0] + parts[1]).ToString(), item.Answer);
            Assert.All(item.Prompt, c => Assert.Contains(c, AdditionTask.Alphabet));
            Assert.Equal(1.0, reward.Score(new RewardInput(item.Prompt, item.Answer, new Dictionary<string, string> { ["answer"] = item.Answer }, 3)));
        }
        Assert.Contains(items, i => i.Prompt.Split('+')[0].Length == 1);
        // The same in every process and on every machine (a held-out set must not change between the SFT
        // and the RL run): pinned values, recorded once, catch per-process hashing or RNG changes.
        Assert.Equal(PinnedFirstProblems, new AdditionTask(3, 0).Items(0, 3).Select(i => i.Prompt).ToArray());
        Assert.Contains(items, i => i.Prompt.Split('+')[0].Length == 3);
    }
}
