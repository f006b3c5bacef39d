using System.Buffers;

namespace OnlineRl.Tokenizers;

/// <summary>Finds added tokens in text: leftmost match first, the longest token among those starting there.</summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar = new();
    private readonly SearchValues<char> _firstChars;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        foreach (var group in tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0]))
            _byFirstChar[group.Key] = group.OrderByDescending(t => t.Content.Length).ThenBy(t => t.Id).ToArray();
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>The next match at or after <paramref name="from"/>: its span in <paramref name="text"/>
    /// (including whitespace taken by lstrip/rstrip, never before <paramref name="from"/>) and token.</summary>
    public bool TryFindNext(ReadOnlySpan<char> text, int from, bool includeSpecial, out int start, out int end,
        out AddedToken token)
    {
        int i = from;
        while (i < text.Length)
        {
            int k = text[i..].IndexOfAny(_firstChars);
            if (k < 0) break;
            i += k;
            foreach (var t in _byFirstChar[text[i]])
            {
                if (!includeSpecial && t.Special) continue;
                if (!text[i..].StartsWith(t.Content, StringComparison.Ordinal)) continue;
                int e = i + t.Content.Length;
                if (t.SingleWord && ((i > 0 && IsWordChar(text[i - 1])) || (e < text.Length && IsWordChar(text[e]))))
                    continue;
                int s = i;
                if (t.LStrip) while (s > from && char.IsWhiteSpace(text[s - 1])) s--;
                if (t.RStrip) while (e < text.Length && char.IsWhiteSpace(text[e])) e++;
                start = s;
                end = e;
                token = t;
                return true;
            }
            i++;
        }
        start = end = -1;
        token = null!;
        return false;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
