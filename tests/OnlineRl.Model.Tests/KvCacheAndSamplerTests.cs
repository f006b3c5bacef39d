namespace OnlineRl.Model.Tests;

// Incremental decoding, batching with left padding, and the sampler's log-probs against recomputation.
public class KvCacheAndSamplerTests
{
    [Fact]
    public void IncrementalDecodingMatchesFullForward()
    {
        using var model = Models.Random(1);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var ids = torch.randint(0, 97, new long[] { 3, 12 });
        var full = model.forward(ids);
        using var cache = new KvCache(model.Config, 3, 12, ScalarType.Float32, CPU);
        var prefix = model.Logits(model.Hidden(ids.narrow(1, 0, 5), null, cache));
        var pieces = new List<Tensor> { prefix };
        for (var t = 5; t < 12; t++)
            pieces.Add(model.Logits(model.Hidden(ids.narrow(1, t, 1), torch.ones(new long[] { 3, t + 1 }, ScalarType.Int64), cache)));
        Models.AssertClose(full.data<float>().ToArray(), torch.cat(pieces, 1).data<float>().ToArray(), 1e-5, "cached vs full logits");
    }

    [Fact]
    public void SamplerLogProbsEqualScorerRecomputation()
    {
        using var model = Models.Random(2);
        var prompts = new[] { new[] { 3, 9, 27, 81 }, new[] { 5, 6 }, new[] { 44, 45, 46, 47, 48, 49, 50 } };
        var options = new SamplingOptions { CompletionsPerPrompt = 4, MaxNewTokens = 24, Temperature = 0.8, Seed = 123 };
        var completions = Sampler.Generate(model, prompts, options);
        Assert.Equal(12, completions.Count);
        var scored = LogProbScorer.Score(model, completions.Select(c => (prompts[c.PromptIndex], c.TokenIds)).ToList(), temperature: 0.8);
        for (var i = 0; i < completions.Count; i++)
            Models.AssertClose(completions[i].LogProbs, scored[i].logProbs, 1e-5, $"completion {i}");
        // The G completions of a prompt differ (they are sampled, not copied).
        Assert.True(completions.Where(c => c.PromptIndex == 0).Select(c => string.Join(",", c.TokenIds)).Distinct().Count() > 1);
    }

    [Fact]
    public void LeftPaddedBatchGivesTheSameGreedyCompletionsAsSinglePrompts()
    {
        using var model = Models.Random(3);
        var prompts = new[] { new[] { 10, 20, 30, 40, 50, 60 }, new[] { 7 }, new[] { 90, 91, 92 } };
        var greedy = new SamplingOptions { MaxNewTokens = 16, Temperature = 0 };
        var batched = Sampler.Generate(model, prompts, greedy);
        for (var i = 0; i < prompts.Length; i++)
        {
            var alone = Sampler.Generate(model, new[] { prompts[i] }, greedy).Single();
            Assert.Equal(alone.TokenIds, batched[i].TokenIds);
            Models.AssertClose(alone.LogProbs, batched[i].LogProbs, 1e-5, $"prompt {i}");
        }
    }

    [Fact]
    public void SamplingIsReproducibleForASeedAndDiffersAcrossSeeds()
    {
        using var model = Models.Random(4);
        var prompts = new[] { new[] { 1, 2, 3 } };
        SamplingOptions Options(long seed) => new() { CompletionsPerPrompt = 3, MaxNewTokens = 20, Temperature = 1.0, TopP = 0.9, TopK = 20, Seed = seed };
        var a = Sampler.Generate(model, prompts, Options(9));
        var b = Sampler.Generate(model, prompts, Options(9));
        var c = Sampler.Generate(model, prompts, Options(10));
        Assert.Equal(a.Select(x => x.TokenIds), b.Select(x => x.TokenIds));
        Assert.NotEqual(a.Select(x => string.Join(",", x.TokenIds)), c.Select(x => string.Join(",", x.TokenIds)));
    }

    [Fact]
    public void TopKOfOneIsGreedy()
    {
        using var model = Models.Random(5);
        var prompts = new[] { new[] { 11, 12 } };
        var greedy = Sampler.Generate(model, prompts, new SamplingOptions { MaxNewTokens = 12, Temperature = 0 }).Single();
        var topOne = Sampler.Generate(model, prompts, new SamplingOptions { MaxNewTokens = 12, Temperature = 1.3, TopK = 1, Seed = 77 }).Single();
        Assert.Equal(greedy.TokenIds, topOne.TokenIds);
    }

    [Fact]
    public void StopTokensAndStopStringsEndCompletions()
    {
        using var model = Models.Random(6);
        var prompts = new[] { new[] { 4, 8, 15 } };
        var free = Sampler.Generate(model, prompts, new SamplingOptions { MaxNewTokens = 20, Temperature = 0 }).Single();
        Assert.Equal(FinishReason.Length, free.Finish);
        Assert.Equal(20, free.TokenIds.Length);
        var stopAt = free.TokenIds[5];
        var firstIndex = Array.IndexOf(free.TokenIds, stopAt);
        var stopped = Sampler.Generate(model, prompts, new SamplingOptions { MaxNewTokens = 20, Temperature = 0, StopTokenIds = new[] { stopAt } }).Single();
        Assert.Equal(FinishReason.Stop, stopped.Finish);
        Assert.Equal(free.TokenIds.Take(firstIndex + 1), stopped.TokenIds);

        string Decode(IReadOnlyList<int> ids) => string.Concat(ids.Select(i => (char)('A' + i % 26)));
        var marker = Decode(free.TokenIds.Skip(8).Take(2).ToArray());
        var byString = Sampler.Generate(model, prompts, new SamplingOptions { MaxNewTokens = 20, Temperature = 0, StopStrings = new[] { marker }, Decode = Decode }).Single();
        Assert.Equal(FinishReason.Stop, byString.Finish);
        Assert.Contains(marker, Decode(byString.TokenIds));
        Assert.DoesNotContain(marker, Decode(byString.TokenIds.SkipLast(1).ToArray()));
    }

    [Fact]
    public void BadOptionsAreRejectedWithTheFieldName()
    {
        using var model = Models.Random(7);
        var error = Assert.Throws<ArgumentException>(() => Sampler.Generate(model, new[] { new[] { 1 } }, new SamplingOptions { TopP = 0 }));
        Assert.Contains("TopP", error.Message);
        error = Assert.Throws<ArgumentException>(() => Sampler.Generate(model, new[] { new[] { 1 } }, new SamplingOptions { MaxNewTokens = 500 }));
        Assert.Contains("positions", error.Message);
    }
}
