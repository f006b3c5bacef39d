
namespace OnlineRl.Training;

/// <summary>A prompt and the completion the model should learn to produce after it (end token included).</summary>
public sealed record SftExample(int[] Prompt, int[] Completion);

/// <summary>
/// Several examples packed into fixed-length rows: the tensors the model needs to train on all of them
/// at once without padding waste and without one example attending to another.
/// </summary>
public sealed class PackedBatch : IDisposable
{
    /// <summary>Token ids [R, L] (padding 0).</summary>
    public required Tensor Ids { get; init; }
    /// <summary>Next-token targets [R, L]; -100 where no loss is taken (prompt, padding, segment ends).</summary>
    public required Tensor Targets { get; init; }
    /// <summary>Example index within the row [R, L]; padding gets its own segment.</summary>
    public required Tensor Segments { get; init; }
    /// <summary>Position within the example [R, L].</summary>
    public required Tensor Positions { get; init; }
    /// <summary>1 for tokens, 0 for padding [R, L].</summary>
    public required Tensor Mask { get; init; }
    /// <summary>Tokens that carry a loss.</summary>
    public long TargetCount { get; init; }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        Ids.Dispose();
        Targets.Dispose();
        Segments.Dispose();
        Positions.Dispose();
        Mask.Dispose();
    }
}

/// <summary>First-fit packing of examples into rows of a fixed length.</summary>
public static class SequencePacker
{
    /// <summary>The value of a target that carries no loss (cross_entropy's ignore_index).</summary>
    public const long Ignore = -100;

    /// <summary>
    /// Packs <paramref name="examples"/> into rows of <paramref name="rowLength"/> tokens, in order, starting a
    /// new row when the next example does not fit. With <paramref name="trainOnPrompt"/> the prompt tokens
    /// are targets too. An example longer than a row is an error naming its index.
    /// </summary>
    public static PackedBatch Pack(IReadOnlyList<SftExample> examples, int rowLength, Device device, bool trainOnPrompt = false)
    {
        var rows = new List<List<(int Index, int[] Tokens, int PromptLength)>>();
        var used = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            var tokens = examples[i].Prompt.Concat(examples[i].Completion).ToArray();
            if (tokens.Length > rowLength)
                throw new ArgumentException($"example {i} has {tokens.Length} tokens, more than a row ({rowLength})", nameof(examples));
            if (rows.Count == 0 || used + tokens.Length > rowLength)
            {
                rows.Add(new());
                used = 0;
            }
            rows[^1].Add((i, tokens, examples[i].Prompt.Length));
            used += tokens.Length;
        }
        var r = rows.Count;
        var ids = new long[r * rowLength];
        var targets = new long[r * rowLength];
        var segments = new long[r * rowLength];
        var positions = new long[r * rowLength];
        var mask = new long[r * rowLength];
        Array.Fill(targets, Ignore);
        long targetCount = 0;
        for (var row = 0; row < r; row++)
        {
            var column = 0;
            var segment = 0;
            foreach (var (_, tokens, promptLength) in rows[row])
            {
                for (var j = 0; j < tokens.Length; j++)
                {
                    var at = row * rowLength + column + j;
                    ids[at] = tokens[j];
                    segments[at] = segment;
                    positions[at] = j;
                    mask[at] = 1;
                    // The logit at token j predicts token j + 1 of the same example.
                    if (j + 1 < tokens.Length && (trainOnPrompt || j + 1 >= promptLength))
                    {
                        targets[at] = tokens[j + 1];
                        targetCount++;
                    }
                }
                column += tokens.Length;
                segment++;
            }
            for (var pad = column; pad < rowLength; pad++) segments[row * rowLength + pad] = segment;
        }
        var shape = new long[] { r, rowLength };
        return new PackedBatch
        {
            Ids = torch.tensor(ids, shape, device: device).DetachFromDisposeScope(),
            Targets = torch.tensor(targets, shape, device: device).DetachFromDisposeScope(),
            Segments = torch.tensor(segments, shape, device: device).DetachFromDisposeScope(),
            Positions = torch.tensor(positions, shape, device: device).DetachFromDisposeScope(),
            Mask = torch.tensor(mask, shape, device: device).DetachFromDisposeScope(),
            TargetCount = targetCount,
        };
    }
}
