
namespace OnlineRl.Model;

/// <summary>How to sample completions.</summary>
public sealed record SamplingOptions
{
    /// <summary>Completions per prompt (G, the group size); they share the prompt's prefill.</summary>
    public int CompletionsPerPrompt { get; init; } = 1;
    /// <summary>Most tokens generated per completion.</summary>
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>Softmax temperature; 0 means greedy decoding.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep only the k most likely tokens (0: off).</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of tokens whose probability reaches p (1: off).</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Tokens that end a completion (included in it).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = Array.Empty<int>();
    /// <summary>Strings that end a completion once the decoded text contains them; needs <see cref="Decode"/>.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    /// <summary>Turns token ids into text, for <see cref="StopStrings"/>.</summary>
    public Func<IReadOnlyList<int>, string>? Decode { get; init; }
    /// <summary>Seed of the sampling generator; the same seed, model and prompts give the same completions.</summary>
    public long Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    public SamplingOptions Validate()
    {
        if (CompletionsPerPrompt < 1) throw new ArgumentException("CompletionsPerPrompt must be at least 1");
        if (MaxNewTokens < 1) throw new ArgumentException("MaxNewTokens must be at least 1");
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException("Temperature must be >= 0");
        if (TopK < 0) throw new ArgumentException("TopK must be >= 0");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException("TopP must be in (0, 1]");
        if (StopStrings.Count > 0 && Decode is null) throw new ArgumentException("StopStrings need a Decode function");
        return this;
    }
}

/// <summary>One sampled completion.</summary>
/// <param name="PromptIndex">Which prompt it continues.</param>
/// <param name="TokenIds">The generated tokens (a final stop token included).</param>
/// <param name="LogProbs">log pi(token) of each generated token under the sampling distribution at the
/// configured temperature, before top-k/top-p truncation: the behaviour log-probs a learner needs.</param>
/// <param name="Finish">Why it ended (Stop: a stop token or string; Length: MaxNewTokens reached).</param>
/// <param name="TokenVersions">The weights version each token was sampled under (<see cref="ContinuousBatcher"/>,
/// whose weights may change mid-completion); null when one version sampled them all.</param>
public sealed record SampledCompletion(int PromptIndex, int[] TokenIds, float[] LogProbs, FinishReason Finish, long[]? TokenVersions = null);

/// <summary>
/// Batched autoregressive sampling with a KV cache. Prompts of different lengths are left-padded; each
/// prompt is prefilled once and its cache copied to its G completions.
/// </summary>
public static class Sampler
{
    /// <summary>Samples <see cref="SamplingOptions.CompletionsPerPrompt"/> completions for every prompt, grouped by prompt.</summary>
    public static IReadOnlyList<SampledCompletion> Generate(TransformerModel model, IReadOnlyList<int[]> prompts, SamplingOptions options)
    {
        options.Validate();
        if (prompts.Count == 0) return Array.Empty<SampledCompletion>();
        if (prompts.Any(p => p.Length == 0)) throw new ArgumentException("every prompt needs at least one token", nameof(prompts));
        var device = model.Device;
        int promptCount = prompts.Count, group = options.CompletionsPerPrompt, rows = promptCount * group;
        var width = prompts.Max(p => p.Length);
        if (width + options.MaxNewTokens > model.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"prompt ({width}) + MaxNewTokens ({options.MaxNewTokens}) exceeds the model's {model.Config.MaxPositionEmbeddings} positions");

        var wasTraining = model.training;
        model.eval();
        using var noGrad = torch.no_grad();
        using var cache = new KvCache(model.Config, promptCount, width + options.MaxNewTokens, model.DType, device);
        var stops = options.StopTokenIds.ToHashSet();
        var tokens = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
        var logProbs = Enumerable.Range(0, rows).Select(_ => new List<float>()).ToArray();
        var finished = new FinishReason?[rows];
        // Prompts of one length need no padding mask at all: the model then builds none in the decode loop.
        var padded = prompts.Any(p => p.Length != width);
        Tensor? mask;
        Tensor logits;
        // A private stream: concurrent samplers (and anything else using the global generator) cannot
        // disturb each other's draws, so a seed reproduces its completions.
        using var generator = new Generator(unchecked((ulong)options.Seed), device);
        try
        {
            using (var scope = torch.NewDisposeScope())
            {
                var ids = new long[promptCount * width];
                var maskValues = new long[promptCount * width];
                for (var i = 0; i < promptCount; i++)
                {
                    var pad = width - prompts[i].Length;
                    for (var j = 0; j < prompts[i].Length; j++)
                    {
                        ids[i * width + pad + j] = prompts[i][j];
                        maskValues[i * width + pad + j] = 1;
                    }
                }
                var inputIds = torch.tensor(ids, new long[] { promptCount, width }, device: device);
                var promptMask = padded ? torch.tensor(maskValues, new long[] { promptCount, width }, device: device) : null;
                var hidden = model.Hidden(inputIds, promptMask, cache);
                var last = model.Logits(hidden.select(1, width - 1));
                // Share each prompt's prefill with its G completions: rows 0..G-1 continue prompt 0, and so on.
                var rowsOfPrompt = HeldScalars.Range(0, promptCount, device).unsqueeze(1).expand(promptCount, group).reshape(-1);
                cache.SelectRows(rowsOfPrompt);
                mask = promptMask is null ? null : scope.MoveToOuter(promptMask.index_select(0, rowsOfPrompt));
                logits = scope.MoveToOuter(last.index_select(0, rowsOfPrompt));
            }

            for (var step = 0; step < options.MaxNewTokens; step++)
            {
                using var scope = torch.NewDisposeScope();
                var (next, nextLogProbs) = SampleToken(logits, options, generator);
                var nextIds = next.data<long>().ToArray();
                var nextLp = nextLogProbs.data<float>().ToArray();
                for (var r = 0; r < rows; r++)
                {
                    if (finished[r] is not null) continue;
                    tokens[r].Add((int)nextIds[r]);
                    logProbs[r].Add(nextLp[r]);
                    if (stops.Contains((int)nextIds[r]) || HitsStopString(tokens[r], options)) finished[r] = FinishReason.Stop;
                    else if (tokens[r].Count == options.MaxNewTokens) finished[r] = FinishReason.Length;
                }
                if (finished.All(f => f is not null)) break;
                var grownMask = mask is null ? null : torch.cat(new[] { mask, torch.ones(new long[] { rows, 1 }, ScalarType.Int64, device) }, 1);
                var hidden = model.Hidden(next.view(rows, 1), grownMask, cache);
                mask?.Dispose();
                logits.Dispose();
                mask = grownMask is null ? null : scope.MoveToOuter(grownMask);
                logits = scope.MoveToOuter(model.Logits(hidden.select(1, 0)));
            }
            mask?.Dispose();
            logits.Dispose();
        }
        finally
        {
            model.train(wasTraining);
        }
        return Enumerable.Range(0, rows)
            .Select(r => new SampledCompletion(r / group, tokens[r].ToArray(), logProbs[r].ToArray(), finished[r] ?? FinishReason.Length))
            .ToList();
    }

    internal static bool HitsStopString(List<int> tokens, SamplingOptions options)
    {
        if (options.StopStrings.Count == 0) return false;
        var text = options.Decode!(tokens);
        return options.StopStrings.Any(s => text.Contains(s, StringComparison.Ordinal));
    }

    /// <summary>
    /// Draws one token per row from logits [N, V]: scaled by 1/T, truncated by top-k and top-p, sampled.
    /// Returns the tokens [N] and their log-probs [N] under softmax(logits / T) (greedy: T = 1). Draws from
    /// <paramref name="generator"/>, or from the global generator when null.
    /// </summary>
    public static (Tensor tokens, Tensor logProbs) SampleToken(Tensor logits, SamplingOptions options, Generator? generator = null) =>
        SampleToken(logits, options, distribution =>
            (generator is null ? distribution.multinomial(1) : distribution.multinomial(1, false, generator)).squeeze(-1));

    /// <summary>
    /// The same as <see cref="SampleToken(Tensor, SamplingOptions, Generator?)"/>, but row r draws from its own stream
    /// <paramref name="rowGenerators"/>[r]: a row's draws then do not depend on which other rows share the batch.
    /// </summary>
    public static (Tensor tokens, Tensor logProbs) SampleToken(Tensor logits, SamplingOptions options, IReadOnlyList<Generator> rowGenerators)
    {
        if (rowGenerators.Count != logits.size(0)) throw new ArgumentException($"{rowGenerators.Count} generators for {logits.size(0)} rows", nameof(rowGenerators));
        return SampleToken(logits, options, distribution =>
            torch.cat(rowGenerators.Select((g, r) => distribution[r].multinomial(1, false, g)).ToArray(), 0));
    }

    /// <summary>The shared body: <paramref name="draw"/> turns the truncated distribution [N, V] into tokens [N].</summary>
    private static (Tensor tokens, Tensor logProbs) SampleToken(Tensor logits, SamplingOptions options, Func<Tensor, Tensor> draw)
    {
        using var scope = torch.NewDisposeScope();
        // Scalars are made and kept alive explicitly: a double converted implicitly (tensor / 0.7) becomes a Scalar that
        // nothing references during the native call, and a garbage collection on another thread may finalize (free) it
        // mid-call ("Expected false to be true" from c10::Scalar::toDouble; 44 in 1.2 million divisions under GC
        // pressure, none with a scoped Scalar). `onlinerl soak` lost a generator to it.
        using var negativeInfinity = double.NegativeInfinity.ToScalar();
        var scaled = logits.to(ScalarType.Float32);
        // Dividing by 1 changes nothing: one op less per decoding step at the default temperature.
        if (options.Temperature is > 0 and not 1.0)
        {
            using var temperature = options.Temperature.ToScalar();
            scaled = scaled / temperature;
        }
        var logProbs = scaled.log_softmax(-1);
        Tensor tokens;
        if (options.Temperature == 0)
        {
            tokens = scaled.argmax(-1);
        }
        else
        {
            var filtered = scaled;
            if (options.TopK > 0 && options.TopK < scaled.size(-1))
            {
                var kth = scaled.topk(options.TopK, -1).values.narrow(-1, options.TopK - 1, 1);
                filtered = filtered.masked_fill(filtered.lt(kth), negativeInfinity);
            }
            if (options.TopP < 1)
            {
                // Drop a token when the tokens more likely than it already reach top_p (always keeps the first).
                var (sorted, order) = filtered.sort(-1, descending: true);
                var probabilities = sorted.softmax(-1);
                var before = probabilities.cumsum(-1) - probabilities;
                using var topP = options.TopP.ToScalar();
                var dropSorted = before.gt(topP);
                var drop = dropSorted.scatter(-1, order, dropSorted);
                filtered = filtered.masked_fill(drop, negativeInfinity);
            }
            var distribution = filtered.softmax(-1);
            tokens = draw(distribution);
        }
        var chosen = logProbs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
        return (scope.MoveToOuter(tokens), scope.MoveToOuter(chosen));
    }
}

/// <summary>
/// Per-token log-probs (and entropies) of given completions under a model: what the learner and the
/// reference model compute, and the check that sampling has no hidden train/inference mismatch.
/// </summary>
public static class LogProbScorer
{
    /// <summary>
    /// For a right-padded batch <paramref name="ids"/> [B, L] with <paramref name="mask"/> [B, L] (1 = real),
    /// the log-prob of each next token, log softmax(logits_t / T)[ids_{t+1}], as [B, L-1], and optionally the
    /// entropy of each next-token distribution [B, L-1]. Differentiable (used for training).
    /// </summary>
    public static (Tensor logProbs, Tensor? entropy) TokenLogProbs(TransformerModel model, Tensor ids, Tensor mask,
        double temperature = 1.0, bool withEntropy = false)
    {
        if (temperature <= 0) throw new ArgumentOutOfRangeException(nameof(temperature), "temperature must be positive");
        using var scope = torch.NewDisposeScope();
        var length = ids.size(1);
        var logits = model.Logits(model.Hidden(ids, mask)).narrow(1, 0, length - 1).to(ScalarType.Float32);
        if (temperature != 1.0) logits = logits.DividedBy(temperature);
        var logProbsAll = logits.log_softmax(-1);
        var targets = ids.narrow(1, 1, length - 1).unsqueeze(-1);
        var logProbs = logProbsAll.gather(-1, targets).squeeze(-1);
        Tensor? entropy = null;
        if (withEntropy) entropy = scope.MoveToOuter((logProbsAll.exp() * logProbsAll).sum(-1).neg());
        return (scope.MoveToOuter(logProbs), entropy);
    }

    /// <summary>
    /// Log-probs [and entropies] of each completion's tokens given its prompt, as arrays (one per pair),
    /// computed in batches of <paramref name="batchSize"/>.
    /// </summary>
    public static IReadOnlyList<(float[] logProbs, float[] entropy)> Score(TransformerModel model,
        IReadOnlyList<(int[] prompt, int[] completion)> pairs, double temperature = 1.0, int batchSize = 16)
    {
        var results = new List<(float[], float[])>();
        using var noGrad = torch.no_grad();
        var wasTraining = model.training;
        model.eval();
        try
        {
            for (var start = 0; start < pairs.Count; start += batchSize)
            {
                using var scope = torch.NewDisposeScope();
                var batch = pairs.Skip(start).Take(batchSize).ToList();
                var width = batch.Max(p => p.prompt.Length + p.completion.Length);
                var ids = new long[batch.Count * width];
                var mask = new long[batch.Count * width];
                for (var i = 0; i < batch.Count; i++)
                {
                    var full = batch[i].prompt.Concat(batch[i].completion).ToArray();
                    for (var j = 0; j < full.Length; j++)
                    {
                        ids[i * width + j] = full[j];
                        mask[i * width + j] = 1;
                    }
                }
                var shape = new long[] { batch.Count, width };
                var (lp, ent) = TokenLogProbs(model, torch.tensor(ids, shape, device: model.Device),
                    torch.tensor(mask, shape, device: model.Device), temperature, withEntropy: true);
                var lpValues = lp.data<float>().ToArray();
                var entValues = ent!.data<float>().ToArray();
                for (var i = 0; i < batch.Count; i++)
                {
                    var (prompt, completion) = batch[i];
                    // Token prompt.Length + j is predicted at position prompt.Length + j - 1.
                    var offset = i * (width - 1) + prompt.Length - 1;
                    results.Add((lpValues.AsSpan(offset, completion.Length).ToArray(), entValues.AsSpan(offset, completion.Length).ToArray()));
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }
        return results;
    }
}
