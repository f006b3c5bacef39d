namespace OnlineRl.Tokenizers;

/// <summary>How a <see cref="SplitStep"/> treats the matches of its pattern (tokenizer.json <c>behavior</c>).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>One pre-tokenization step: cuts each piece of text into smaller pieces.</summary>
internal abstract class PreTokenizerStep
{
    /// <summary>Appends the pieces of <paramref name="piece"/> to <paramref name="output"/>.</summary>
    public abstract void Split(ReadOnlyMemory<char> piece, List<ReadOnlyMemory<char>> output, List<(int Start, int Length)> scratch);

    /// <summary>A short description for error messages and tests.</summary>
    public abstract string Describe();
}

/// <summary>Splits by a regex or a literal string (tokenizer.json <c>Split</c>, and ByteLevel's own regex).</summary>
internal sealed class SplitStep : PreTokenizerStep
{
    private readonly SplitRegex _regex;
    private readonly SplitBehavior _behavior;
    private readonly bool _invert;

    public SplitStep(SplitRegex regex, SplitBehavior behavior, bool invert)
    {
        _regex = regex;
        _behavior = behavior;
        _invert = invert;
    }

    public SplitRegex Regex => _regex;

    public override string Describe() => $"Split({_regex.Pattern}, {_behavior}{(_invert ? ", invert" : "")})";

    public override void Split(ReadOnlyMemory<char> piece, List<ReadOnlyMemory<char>> output, List<(int Start, int Length)> scratch)
    {
        scratch.Clear();
        _regex.FindMatches(piece.Span, scratch);
        if (_behavior == SplitBehavior.Isolated && !_invert)
        {
            // The common case: matches and the gaps between them, in order.
            int pos = 0;
            foreach (var (s, len) in scratch)
            {
                if (s > pos) output.Add(piece[pos..s]);
                output.Add(piece.Slice(s, len));
                pos = s + len;
            }
            if (pos < piece.Length) output.Add(piece[pos..]);
            return;
        }
        // General case, as in the Hugging Face tokenizers: segments flagged match/non-match, then the behavior.
        var segments = new List<(int Start, int End, bool Match)>();
        int p = 0;
        foreach (var (s, len) in scratch)
        {
            if (s > p) segments.Add((p, s, _invert));
            segments.Add((s, s + len, !_invert));
            p = s + len;
        }
        if (p < piece.Length) segments.Add((p, piece.Length, _invert));
        var result = new List<(int Start, int End)>();
        switch (_behavior)
        {
            case SplitBehavior.Removed:
                foreach (var seg in segments) if (!seg.Match) result.Add((seg.Start, seg.End));
                break;
            case SplitBehavior.Isolated:
                foreach (var seg in segments) result.Add((seg.Start, seg.End));
                break;
            case SplitBehavior.MergedWithPrevious:
            {
                bool previousMatch = false;
                foreach (var seg in segments)
                {
                    if (seg.Match && !previousMatch && result.Count > 0) result[^1] = (result[^1].Start, seg.End);
                    else result.Add((seg.Start, seg.End));
                    previousMatch = seg.Match;
                }
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                bool previousMatch = false;
                for (int i = segments.Count - 1; i >= 0; i--)
                {
                    var seg = segments[i];
                    if (seg.Match && !previousMatch && result.Count > 0) result[^1] = (seg.Start, result[^1].End);
                    else result.Add((seg.Start, seg.End));
                    previousMatch = seg.Match;
                }
                result.Reverse();
                break;
            }
            case SplitBehavior.Contiguous:
            {
                bool? previousMatch = null;
                foreach (var seg in segments)
                {
                    if (previousMatch == seg.Match && result.Count > 0) result[^1] = (result[^1].Start, seg.End);
                    else result.Add((seg.Start, seg.End));
                    previousMatch = seg.Match;
                }
                break;
            }
        }
        foreach (var (s, e) in result)
            if (e > s) output.Add(piece[s..e]);
    }
}

/// <summary>tokenizer.json <c>ByteLevel</c> as a pre-tokenizer: optional prefix space and GPT-2's regex
/// split. (The byte-to-character mapping itself happens in the BPE model.)</summary>
internal sealed class ByteLevelStep : PreTokenizerStep
{
    /// <summary>GPT-2's pre-tokenizer pattern.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Lazy<SplitStep> Gpt2Split = new(() => new SplitStep(new SplitRegex(Gpt2Pattern), SplitBehavior.Isolated, false));

    private readonly bool _addPrefixSpace;
    private readonly bool _useRegex;

    public ByteLevelStep(bool addPrefixSpace, bool useRegex)
    {
        _addPrefixSpace = addPrefixSpace;
        _useRegex = useRegex;
    }

    public override string Describe() => $"ByteLevel(add_prefix_space={_addPrefixSpace}, use_regex={_useRegex})";

    public override void Split(ReadOnlyMemory<char> piece, List<ReadOnlyMemory<char>> output, List<(int Start, int Length)> scratch)
    {
        if (_addPrefixSpace && (piece.Length == 0 || piece.Span[0] != ' '))
            piece = string.Concat(" ", piece.Span).AsMemory();
        if (_useRegex) Gpt2Split.Value.Split(piece, output, scratch);
        else output.Add(piece);
    }
}

/// <summary>The pre-tokenizer pipeline: each step applied to every piece the previous one produced.</summary>
internal sealed class PreTokenizer
{
    private readonly PreTokenizerStep[] _steps;

    public PreTokenizer(IReadOnlyList<PreTokenizerStep> steps) => _steps = steps.ToArray();

    public IReadOnlyList<PreTokenizerStep> Steps => _steps;

    /// <summary>Splits <paramref name="text"/> into the pieces BPE runs on.</summary>
    public void Run(ReadOnlyMemory<char> text, List<ReadOnlyMemory<char>> output)
    {
        var scratch = new List<(int, int)>();
        if (_steps.Length == 0) { output.Add(text); return; }
        if (_steps.Length == 1) { _steps[0].Split(text, output, scratch); return; }
        var current = new List<ReadOnlyMemory<char>> { text };
        var next = new List<ReadOnlyMemory<char>>();
        for (int s = 0; s < _steps.Length; s++)
        {
            var target = s == _steps.Length - 1 ? output : next;
            foreach (var piece in current) _steps[s].Split(piece, target, scratch);
            (current, next) = (next, current);
            next.Clear();
        }
    }
}
