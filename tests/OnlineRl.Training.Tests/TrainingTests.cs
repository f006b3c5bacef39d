namespace OnlineRl.Training.Tests;

public class TrainingTests
{
    private static TransformerModel SmallModel(ModelHeads heads = ModelHeads.None)
    {
        torch.manual_seed(3);
        return new TransformerModel(new ModelConfig
        {
            ModelType = "llama", VocabSize = 16, HiddenSize = 32, IntermediateSize = 64, NumLayers = 2, NumHeads = 4, NumKvHeads = 2,
            HeadDim = 8, MaxPositionEmbeddings = 64, TieWordEmbeddings = true, Heads = heads,
        });
    }

    [Fact]
    public void RolloutBatchAlignsCompletionTokensWithTheirLogProbs()
    {
        var groups = new[]
        {
            new ScoredGroupData("a", new[] { 5, 6, 7 }, new[]
            {
                new ScoredCompletion(new[] { 1, 2 }, new[] { -0.5f, -0.25f }, 1),
                new ScoredCompletion(new[] { 3 }, new[] { -1f }, 0),
            }, 1),
            new ScoredGroupData("b", new[] { 9 }, new[]
            {
                new ScoredCompletion(new[] { 4, 4, 4, 4 }, new[] { -0.1f, -0.2f, -0.3f, -0.4f }, 0.5),
                new ScoredCompletion(new[] { 8 }, new[] { -2f }, 0),
            }, 2),
        };
        using var batch = RolloutBatch.Build(groups, CPU);
        Assert.Equal(new long[] { 4, 5 }, batch.Ids.shape);
        Assert.Equal(new long[] { 5, 6, 7, 1, 2, 5, 6, 7, 3, 0, 9, 4, 4, 4, 4, 9, 8, 0, 0, 0 }, batch.Ids.data<long>().ToArray());
        // Entry t of the per-token tensors belongs to the token at t + 1.
        Assert.Equal(new float[] { 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0 }, batch.CompletionMask.data<float>().ToArray());
        Assert.Equal(new float[] { 0, 0, -0.5f, -0.25f, 0, 0, -1, 0, -0.1f, -0.2f, -0.3f, -0.4f, -2, 0, 0, 0 }, batch.BehaviourLogProbs.data<float>().ToArray());
        Assert.Equal(new float[] { 1, 0, 0.5f, 0 }, batch.Rewards.data<float>().ToArray());
        Assert.Equal(8, batch.CompletionTokens);

        // The log-probs the learner computes over this layout equal the scorer's per completion.
        using var model = SmallModel();
        using var noGrad = torch.no_grad();
        var (logProbs, _) = LogProbScorer.TokenLogProbs(model, batch.Ids, batch.AttentionMask);
        var flat = logProbs.data<float>().ToArray();
        var scored = LogProbScorer.Score(model, groups.SelectMany(g => g.Completions.Select(c => (g.Prompt, c.Tokens))).ToList());
        Assert.Equal(scored[0].logProbs, new[] { flat[2], flat[3] });
        Assert.Equal(scored[2].logProbs, new[] { flat[8], flat[9], flat[10], flat[11] });
    }

    [Fact]
    public void RolloutBatchRejectsMismatchedLogProbs()
    {
        var bad = new[] { new ScoredGroupData("x", new[] { 1 }, new[] { new ScoredCompletion(new[] { 1, 2 }, new[] { -1f }, 0) }, 0) };
        var error = Assert.Throws<ArgumentException>(() => RolloutBatch.Build(bad, CPU));
        Assert.Contains("rollout x", error.Message);
    }

    [Fact]
    public void RewardModelLearnsAPreference()
    {
        // Chosen completions end in an even token, rejected ones in an odd token: a preference a tiny model can learn.
        var random = new Random(5);
        PreferencePair Pair()
        {
            var prompt = Enumerable.Range(0, 3).Select(_ => random.Next(3, 16)).ToArray();
            var body = Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(3, 16)).ToArray();
            return new PreferencePair(prompt, body.Append(2 * random.Next(2, 8)).ToArray(), body.Append(2 * random.Next(2, 7) + 1).ToArray());
        }
        var training = Enumerable.Range(0, 2000).Select(_ => Pair()).ToList();
        var heldOut = Enumerable.Range(0, 300).Select(_ => Pair()).ToList();
        using var model = SmallModel(ModelHeads.Reward);
        var before = RewardModel.PairAccuracy(model, heldOut);
        var history = RewardModel.Train(model, training, new RewardModelOptions { Steps = 120, PairsPerStep = 64, LearningRate = 3e-3, Seed = 1 });
        var after = RewardModel.PairAccuracy(model, heldOut);
        Assert.InRange(before, 0.3, 0.7);
        Assert.True(after > 0.95, $"held-out pair accuracy {after:P1} (before {before:P1})");
        Assert.True(history[^1].Loss < history[0].Loss / 3, $"loss {history[0].Loss:F3} -> {history[^1].Loss:F3}");
    }
}
