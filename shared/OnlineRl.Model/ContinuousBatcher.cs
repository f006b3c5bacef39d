namespace OnlineRl.Model;

/// <summary>The G completions of one prompt, handed back when the last of them has ended.</summary>
/// <param name="Id">The id <see cref="ContinuousBatcher.Add"/> returned for the prompt.</param>
/// <param name="Completions">Its completions in order (completion index 0 .. G-1; <see cref="SampledCompletion.PromptIndex"/> is 0).</param>
public sealed record FinishedGroup(long Id, IReadOnlyList<SampledCompletion> Completions);

/// <summary>
/// Continuous batching (as in Orca and vLLM): one running decode batch whose rows are completions of different
/// prompts. Every <see cref="Step"/> samples one token for every running row; a row that ends (stop token, stop
/// string, <see cref="SamplingOptions.MaxNewTokens"/>) leaves at once and a waiting completion takes its row in the
/// next step, so no row idles while the longest completion of a batch finishes. Each prompt is prefilled once; its
/// keys/values are copied into the row of each of its G completions as they join. The rows live in one preallocated
/// <see cref="SlotKvCache"/> and are kept packed at the front, so a step's batch is a view, never a copy.
/// Completion c of the prompt added with seed s draws from its own random stream (see <see cref="StreamSeed"/>), so
/// its tokens do not depend on which other rows shared its steps.
/// <para>The model's weights may change between two steps (an in-flight weight swap, as in PipelineRL): after
/// <see cref="WeightsChanged"/> the running rows go on under the new weights, their keys/values recomputed or kept,
/// and <see cref="SampledCompletion.TokenVersions"/> records beside each token's behaviour log-prob the version whose
/// weights computed its logits.</para>
/// </summary>
public sealed class ContinuousBatcher : IDisposable
{
    private readonly TransformerModel model;
    private readonly SamplingOptions options;
    private readonly SlotKvCache cache;
    private readonly HashSet<int> stops;
    private readonly Queue<Group> waiting = new();
    private readonly List<Row> rows = new();
    private readonly Tensor logits;
    private long nextId;

    /// <summary>
    /// An engine for <paramref name="model"/> with up to <paramref name="maxRows"/> completions decoding at once; its
    /// cache starts with room for prompts of <paramref name="promptTokens"/> tokens and grows when a longer one is added
    /// (up to the model's positions). <paramref name="options"/> applies to every prompt (<see cref="SamplingOptions.Seed"/>
    /// is unused: each prompt brings its own). <paramref name="weightsVersion"/> tags the tokens sampled with the model's
    /// weights as they are now.
    /// </summary>
    public ContinuousBatcher(TransformerModel model, SamplingOptions options, int maxRows, int promptTokens, long weightsVersion = 0)
    {
        WeightsVersion = weightsVersion;
        this.model = model;
        this.options = options.Validate();
        if (maxRows < 1) throw new ArgumentOutOfRangeException(nameof(maxRows), "at least one row is needed");
        if (promptTokens < 1) throw new ArgumentOutOfRangeException(nameof(promptTokens), "prompts have at least one token");
        cache = new SlotKvCache(model.Config, maxRows, CapacityFor(promptTokens), model.DType, model.Device);
        stops = options.StopTokenIds.ToHashSet();
        logits = torch.zeros(new long[] { maxRows, model.Config.VocabSize }, ScalarType.Float32, model.Device).DetachFromDisposeScope();
    }

    /// <summary>The longest prompt the model's positions leave room for.</summary>
    public int MaxPromptTokens => model.Config.MaxPositionEmbeddings - options.MaxNewTokens;

    /// <summary>Completions decoding now.</summary>
    public int RunningRows => rows.Count;

    /// <summary>Prompts added whose completions have not all ended.</summary>
    public int OpenGroups { get; private set; }

    /// <summary>Completions that still wait for a row.</summary>
    public int WaitingCompletions => waiting.Sum(g => options.CompletionsPerPrompt - g.Admitted);

    /// <summary>Tokens sampled so far.</summary>
    public long SampledTokens { get; private set; }

    /// <summary>The version of the model's weights the next step samples under (each token is tagged with it).</summary>
    public long WeightsVersion { get; private set; }

    /// <summary>
    /// Tells the engine that the model's weights are now version <paramref name="version"/>. With
    /// <paramref name="recompute"/> (exact) the keys/values and next-token logits of every running row are recomputed
    /// from its prompt and tokens so far (one batched forward), so every token is sampled from exactly one version.
    /// Without (PipelineRL's choice, much cheaper where a prefill costs many decode steps) the running rows' keys/values
    /// computed by earlier versions stay: the next token still comes from the logits the old weights computed, and
    /// later tokens from the new weights
    /// reading a context partly encoded by the old ones, so their log-probs are those of the distribution they were
    /// sampled from but not exactly any one version's. Either way each token is tagged with the version whose weights
    /// computed its logits. Prompts prefilled for completions still waiting are prefilled again when they join. The rows
    /// keep their tokens, random streams and places.
    /// </summary>
    public void WeightsChanged(long version, bool recompute = true)
    {
        WeightsVersion = version;
        // A prompt's prefill is cheap next to its completions: prompts still waiting are prefilled afresh either way.
        foreach (var group in waiting) group.DropPrefill();
        if (!recompute || rows.Count == 0) return;
        var wasTraining = model.training;
        model.eval();
        using var noGrad = torch.no_grad();
        try
        {
            var sequences = rows.Select(r => r.Group.Prompt.Concat(r.Tokens).ToArray()).ToList();
            using var prefill = Prefill(sequences);
            for (var slot = 0; slot < rows.Count; slot++)
            {
                cache.Load(slot, prefill.Cache, slot, sequences[slot].Length);
                using var scope = torch.NewDisposeScope();
                logits[slot].copy_(prefill.LastLogits[slot]);
                rows[slot].LogitsVersion = version;
            }
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Queues a prompt for its G completions; returns its id. The prompt is prefilled when its first completion gets a row.</summary>
    public long Add(int[] prompt, long seed)
    {
        if (prompt.Length == 0) throw new ArgumentException("a prompt needs at least one token", nameof(prompt));
        if (prompt.Length > MaxPromptTokens)
            throw new ArgumentException($"prompt ({prompt.Length}) + MaxNewTokens ({options.MaxNewTokens}) exceeds the model's {model.Config.MaxPositionEmbeddings} positions", nameof(prompt));
        if (prompt.Any(t => t < 0 || t >= model.Config.VocabSize)) throw new ArgumentException("prompt token ids outside the vocabulary", nameof(prompt));
        // Grown at least twofold, so that prompts growing one token at a time do not reallocate the cache every time.
        if (CapacityFor(prompt.Length) > cache.Capacity) cache.Grow(Math.Max(CapacityFor(prompt.Length), Math.Min(2 * cache.Capacity, model.Config.MaxPositionEmbeddings)));
        var group = new Group(nextId++, prompt, seed, new SampledCompletion?[options.CompletionsPerPrompt]);
        waiting.Enqueue(group);
        OpenGroups++;
        return group.Id;
    }

    /// <summary>
    /// Fills free rows with waiting completions, samples one token for every running row, lets ended rows leave and
    /// runs the model on the rest. Returns the prompts whose last completion ended in this step.
    /// </summary>
    public IReadOnlyList<FinishedGroup> Step()
    {
        var wasTraining = model.training;
        model.eval();
        using var noGrad = torch.no_grad();
        try
        {
            Admit();
            if (rows.Count == 0) return Array.Empty<FinishedGroup>();
            var finished = new List<FinishedGroup>();
            long[] nextIds;
            using (var scope = torch.NewDisposeScope())
            {
                var active = logits.narrow(0, 0, rows.Count);
                var (next, nextLogProbs) = options.Temperature == 0
                    ? Sampler.SampleToken(active, options)
                    : Sampler.SampleToken(active, options, rows.Select(r => r.Generator!).ToList());
                nextIds = next.data<long>().ToArray();
                var nextLp = nextLogProbs.data<float>().ToArray();
                for (var r = 0; r < rows.Count; r++)
                {
                    var row = rows[r];
                    row.Tokens.Add((int)nextIds[r]);
                    row.LogProbs.Add(nextLp[r]);
                    row.Versions.Add(row.LogitsVersion);
                    if (stops.Contains((int)nextIds[r]) || Sampler.HitsStopString(row.Tokens, options)) row.Finish = FinishReason.Stop;
                    else if (row.Tokens.Count == options.MaxNewTokens) row.Finish = FinishReason.Length;
                }
                SampledTokens += rows.Count;
            }
            // Ended rows leave; the last running row moves into each freed slot, so the running rows stay packed.
            for (var r = rows.Count - 1; r >= 0; r--)
            {
                if (rows[r].Finish is not { } reason) continue;
                var row = rows[r];
                row.Generator?.Dispose();
                row.Group.Completions[row.Index] = new SampledCompletion(0, row.Tokens.ToArray(), row.LogProbs.ToArray(), reason, row.Versions.ToArray());
                if (++row.Group.Ended == options.CompletionsPerPrompt)
                {
                    finished.Add(new FinishedGroup(row.Group.Id, row.Group.Completions.Select(c => c!).ToList()));
                    OpenGroups--;
                }
                var last = rows.Count - 1;
                if (r != last)
                {
                    cache.Move(last, r);
                    rows[r] = rows[last];
                    nextIds[r] = nextIds[last];
                }
                rows.RemoveAt(last);
            }
            if (rows.Count > 0) Decode(nextIds.AsSpan(0, rows.Count));
            // Groups ending in the same step are reported oldest prompt first.
            return finished.OrderBy(g => g.Id).ToList();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Runs <see cref="Step"/> until every added prompt has ended; returns the groups in the order they ended.</summary>
    public IReadOnlyList<FinishedGroup> RunToEnd()
    {
        var all = new List<FinishedGroup>();
        while (OpenGroups > 0) all.AddRange(Step());
        return all;
    }

    private long CapacityFor(int promptTokens) => Math.Min(promptTokens, MaxPromptTokens) + options.MaxNewTokens;

    /// <summary>
    /// The seed of completion <paramref name="completion"/>'s stream for a prompt added with <paramref name="seed"/>
    /// (SplitMix64's finaliser over both, so neighbouring seeds give unrelated streams).
    /// </summary>
    public static ulong StreamSeed(long seed, int completion)
    {
        var z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)completion + 1);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    /// <summary>
    /// Gives free rows to waiting completions. The prompts whose first completion joins now are prefilled together in
    /// one batched forward; each prompt's keys/values are then copied into the rows of its G completions.
    /// </summary>
    private void Admit()
    {
        var free = cache.Rows - rows.Count;
        var joining = new List<Group>();
        foreach (var group in waiting)
        {
            if (free <= 0) break;
            if (group.Prefill is null) joining.Add(group);
            free -= options.CompletionsPerPrompt - group.Admitted;
        }
        if (joining.Count > 0)
        {
            var prefill = Prefill(joining.Select(g => g.Prompt).ToList());
            for (var i = 0; i < joining.Count; i++) joining[i].Hold(prefill, i);
        }
        while (rows.Count < cache.Rows && waiting.Count > 0)
        {
            var group = waiting.Peek();
            var (shared, index) = group.Prefill!.Value;
            var slot = rows.Count;
            cache.Load(slot, shared.Cache, index, group.Prompt.Length);
            using (var scope = torch.NewDisposeScope()) logits[slot].copy_(shared.LastLogits[index]);
            var generator = options.Temperature == 0 ? null : new Generator(StreamSeed(group.Seed, group.Admitted), model.Device);
            rows.Add(new Row(group, group.Admitted, generator) { LogitsVersion = shared.Version });
            if (++group.Admitted == options.CompletionsPerPrompt)
            {
                waiting.Dequeue();
                group.DropPrefill();
            }
        }
    }

    /// <summary>
    /// Runs the model once over <paramref name="sequences"/>, right-padded to the longest: under the causal mask a
    /// position never sees the padding after it, so row i's keys/values at positions 0 .. length-1 and its logits at
    /// length-1 are those of the sequence alone.
    /// </summary>
    private SharedPrefill Prefill(IReadOnlyList<int[]> sequences)
    {
        using var scope = torch.NewDisposeScope();
        var longest = sequences.Max(s => s.Length);
        var padded = new long[sequences.Count * longest];
        for (var i = 0; i < sequences.Count; i++)
            for (var t = 0; t < sequences[i].Length; t++) padded[i * longest + t] = sequences[i][t];
        var kv = new KvCache(model.Config, sequences.Count, longest, model.DType, model.Device);
        var ids = torch.tensor(padded, new long[] { sequences.Count, longest }, device: model.Device);
        var hidden = model.Hidden(ids, null, kv);
        var last = torch.tensor(sequences.Select(s => (long)s.Length - 1).ToArray(), ScalarType.Int64, model.Device);
        var lastHidden = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.size(2))).squeeze(1);
        return new SharedPrefill(kv, model.Logits(lastHidden).to(ScalarType.Float32).DetachFromDisposeScope(), WeightsVersion);
    }

    /// <summary>One forward of the running rows with their newest tokens; their next-token logits go to <see cref="logits"/>.</summary>
    private void Decode(ReadOnlySpan<long> tokens)
    {
        using var scope = torch.NewDisposeScope();
        var n = rows.Count;
        var device = model.Device;
        var ids = torch.tensor(tokens.ToArray(), new long[] { n, 1 }, device: device);
        var (positions, maskBias) = cache.BeginStep(n);
        var hidden = model.model.Forward(ids, positions, maskBias, causal: false, cache);
        cache.EndStep();
        logits.narrow(0, 0, n).copy_(model.Logits(hidden.select(1, 0)));
        foreach (var row in rows) row.LogitsVersion = WeightsVersion;
    }

    /// <summary>Frees the cache and any waiting prefill.</summary>
    public void Dispose()
    {
        foreach (var group in waiting) group.DropPrefill();
        foreach (var row in rows) row.Generator?.Dispose();
        cache.Dispose();
        logits.Dispose();
    }

    private sealed class Group(long id, int[] prompt, long seed, SampledCompletion?[] completions)
    {
        public long Id { get; } = id;
        public int[] Prompt { get; } = prompt;
        public long Seed { get; } = seed;
        public SampledCompletion?[] Completions { get; } = completions;
        public int Admitted { get; set; }
        public int Ended { get; set; }
        public (SharedPrefill Shared, int Index)? Prefill { get; private set; }

        public void Hold(SharedPrefill shared, int index)
        {
            shared.Holders++;
            Prefill = (shared, index);
        }

        public void DropPrefill()
        {
            Prefill?.Shared.Release();
            Prefill = null;
        }
    }

    /// <summary>
    /// One batched prefill: the keys/values of several sequences and each one's next-token logits, shared by the
    /// prompts prefilled together and freed when the last of them has no completion left to join.
    /// </summary>
    private sealed class SharedPrefill(KvCache cache, Tensor lastLogits, long version) : IDisposable
    {
        public KvCache Cache { get; } = cache;
        public Tensor LastLogits { get; } = lastLogits;
        public long Version { get; } = version;
        public int Holders { get; set; }

        public void Release()
        {
            if (--Holders == 0) Dispose();
        }

        public void Dispose()
        {
            Cache.Dispose();
            LastLogits.Dispose();
        }
    }

    private sealed class Row(Group group, int index, Generator? generator)
    {
        public Group Group { get; } = group;
        public int Index { get; } = index;
        public Generator? Generator { get; } = generator;
        public List<int> Tokens { get; } = new();
        public List<float> LogProbs { get; } = new();
        public List<long> Versions { get; } = new();
        /// <summary>The version whose weights computed this row's pending next-token logits.</summary>
        public long LogitsVersion { get; set; }
        public FinishReason? Finish { get; set; }
    }
}

/// <summary>
/// A preallocated KV cache whose rows (slots) hold sequences of different lengths: the storage of
/// <see cref="ContinuousBatcher"/>. Running sequences occupy slots 0 .. n-1; a decoding step writes each row's new
/// key/value at that row's own length, in place.
/// </summary>
public sealed class SlotKvCache : IKvCache, IDisposable
{
    private readonly Tensor[] keys;
    private readonly Tensor[] values;
    private readonly long[] lengths;
    private Tensor? stepRows;
    private Tensor? stepPositions;
    private long stepKeys;

    /// <summary>An empty cache of <paramref name="rows"/> slots, <paramref name="capacity"/> positions each.</summary>
    public SlotKvCache(ModelConfig config, int rows, long capacity, ScalarType dtype, Device device)
    {
        Rows = rows;
        Capacity = capacity;
        lengths = new long[rows];
        (keys, values) = KvCache.Allocate(config, rows, capacity, dtype, device);
    }

    /// <summary>Slots in all.</summary>
    public int Rows { get; }

    /// <summary>Positions per slot.</summary>
    public long Capacity { get; private set; }

    /// <summary>Reallocates every slot with room for <paramref name="capacity"/> positions, keeping what they hold.</summary>
    public void Grow(long capacity)
    {
        if (capacity <= Capacity) return;
        using var scope = torch.NewDisposeScope();
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Widen(keys[i], capacity);
            values[i] = Widen(values[i], capacity);
        }
        Capacity = capacity;
    }

    private Tensor Widen(Tensor old, long capacity)
    {
        var shape = old.shape;
        shape[2] = capacity;
        var wider = torch.zeros(shape, old.dtype, old.device).DetachFromDisposeScope();
        wider.narrow(2, 0, Capacity).copy_(old);
        old.Dispose();
        return wider;
    }

    /// <summary>Positions filled in slot <paramref name="slot"/>.</summary>
    public long Length(int slot) => lengths[slot];

    /// <summary>Copies the first <paramref name="length"/> positions of row <paramref name="row"/> of <paramref name="prefill"/> into slot <paramref name="slot"/>.</summary>
    internal void Load(int slot, KvCache prefill, int row, long length)
    {
        using var scope = torch.NewDisposeScope();
        for (var layer = 0; layer < keys.Length; layer++)
        {
            var (k, v) = prefill.Filled(layer);
            keys[layer][slot].narrow(1, 0, length).copy_(k[row].narrow(1, 0, length));
            values[layer][slot].narrow(1, 0, length).copy_(v[row].narrow(1, 0, length));
        }
        lengths[slot] = length;
    }

    /// <summary>Copies slot <paramref name="from"/>'s filled positions into slot <paramref name="to"/>.</summary>
    internal void Move(int from, int to)
    {
        using var scope = torch.NewDisposeScope();
        var length = lengths[from];
        for (var layer = 0; layer < keys.Length; layer++)
        {
            keys[layer][to].narrow(1, 0, length).copy_(keys[layer][from].narrow(1, 0, length));
            values[layer][to].narrow(1, 0, length).copy_(values[layer][from].narrow(1, 0, length));
        }
        lengths[to] = length;
    }

    /// <summary>
    /// Starts a decoding step of slots 0 .. <paramref name="count"/>-1 with one new token each: their positions
    /// [count, 1] and the attention mask bias [count, 1, 1, S] (null when every slot has the same length, so no key
    /// needs hiding), S being the longest slot's length after the step.
    /// </summary>
    internal (Tensor positions, Tensor? maskBias) BeginStep(int count)
    {
        var active = lengths.AsSpan(0, count);
        var longest = 0L;
        var shortest = long.MaxValue;
        foreach (var l in active)
        {
            longest = Math.Max(longest, l);
            shortest = Math.Min(shortest, l);
        }
        if (longest + 1 > Capacity) throw new InvalidOperationException($"slot cache full: {longest} + 1 positions exceed its capacity of {Capacity}");
        var device = keys[0].device;
        stepKeys = longest + 1;
        stepRows = HeldScalars.Range(0, count, device);
        stepPositions = torch.tensor(active.ToArray(), ScalarType.Int64, device);
        Tensor? maskBias = null;
        if (shortest != longest)
        {
            // Row r's new token sits at position lengths[r]: it may see keys 0 .. lengths[r]; the rest of the step's
            // S keys belong to nothing yet (or to an earlier occupant of the slot).
            var hidden = HeldScalars.Range(0, stepKeys, device).view(1, stepKeys).gt(stepPositions.view(count, 1));
            using var blockedValue = float.MinValue.ToScalar();
            maskBias = torch.zeros(new[] { count, 1, 1, stepKeys }, keys[0].dtype, device).masked_fill(hidden.view(count, 1, 1, stepKeys), blockedValue);
        }
        return (stepPositions.view(count, 1), maskBias);
    }

    /// <inheritdoc />
    public (Tensor k, Tensor v) Append(int layer, Tensor k, Tensor v)
    {
        if (stepRows is null || stepPositions is null) throw new InvalidOperationException("Append outside a step: call BeginStep first");
        var count = stepRows.size(0);
        var at = new[] { TensorIndex.Tensor(stepRows), TensorIndex.Colon, TensorIndex.Tensor(stepPositions) };
        // k [n, K, 1, D] -> [n, K, D], the shape of cache[rows, :, positions].
        keys[layer].index_put_(k.squeeze(2), at);
        values[layer].index_put_(v.squeeze(2), at);
        return (keys[layer].narrow(0, 0, count).narrow(2, 0, stepKeys), values[layer].narrow(0, 0, count).narrow(2, 0, stepKeys));
    }

    /// <summary>Ends a step: each stepped slot holds one more position.</summary>
    internal void EndStep()
    {
        var count = (int)stepRows!.size(0);
        for (var r = 0; r < count; r++) lengths[r]++;
        stepRows = null;
        stepPositions = null;
    }

    /// <summary>Frees the cache.</summary>
    public void Dispose()
    {
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
    }
}
