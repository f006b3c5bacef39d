using System.Text;

namespace OnlineRl.Tokenizers;

/// <summary>
/// A character-level tokenizer for small from-scratch models: ids 0, 1, 2 are the pad, BOS and EOS tokens
/// (<c>&lt;pad&gt;</c>, <c>&lt;bos&gt;</c>, <c>&lt;eos&gt;</c>), then one id per character of the alphabet in
/// the given order. Characters are Unicode code points, so an emoji is one token.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    /// <summary>The padding token's text.</summary>
    public const string PadToken = "<pad>";

    /// <summary>The beginning-of-sequence token's text.</summary>
    public const string BosToken = "<bos>";

    /// <summary>The end-of-sequence token's text.</summary>
    public const string EosToken = "<eos>";

    private static readonly string[] Specials = [PadToken, BosToken, EosToken];

    private readonly string[] _tokens;
    private readonly Dictionary<int, int> _idOfCodePoint = new();
    private readonly int? _unkId;

    /// <summary>Creates the tokenizer.</summary>
    /// <param name="alphabet">The characters, each once (code points; surrogate pairs count as one).</param>
    /// <param name="unknownCharacter">If set (it must be in the alphabet), characters outside the alphabet
    /// encode to it; otherwise they are an error.</param>
    /// <exception cref="ArgumentException">The alphabet is empty, repeats a character or holds a lone surrogate.</exception>
    public CharTokenizer(string alphabet, char? unknownCharacter = null)
    {
        ArgumentNullException.ThrowIfNull(alphabet);
        if (alphabet.Length == 0) throw new ArgumentException("the alphabet is empty", nameof(alphabet));
        var tokens = new List<string>(Specials);
        int index = 0;
        foreach (var rune in EnumerateRunes(alphabet, nameof(alphabet)))
        {
            if (!_idOfCodePoint.TryAdd(rune.Value, tokens.Count))
                throw new ArgumentException($"the alphabet repeats '{rune}' (at offset {index})", nameof(alphabet));
            tokens.Add(rune.ToString());
            index += rune.Utf16SequenceLength;
        }
        _tokens = tokens.ToArray();
        if (unknownCharacter is { } u)
        {
            _unkId = _idOfCodePoint.TryGetValue(u, out int id) ? id
                : throw new ArgumentException($"the unknown character '{u}' is not in the alphabet", nameof(unknownCharacter));
        }
        Alphabet = alphabet;
    }

    /// <summary>The alphabet the tokenizer was built with.</summary>
    public string Alphabet { get; }

    /// <inheritdoc/>
    public int VocabSize => _tokens.Length;

    /// <inheritdoc/>
    public int? PadId => 0;

    /// <inheritdoc/>
    public int? BosId => 1;

    /// <inheritdoc/>
    public int? EosId => 2;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">A character is not in the alphabet (and there is no unknown character).</exception>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        int offset = 0;
        foreach (var rune in EnumerateRunes(text, nameof(text)))
        {
            if (_idOfCodePoint.TryGetValue(rune.Value, out int id)) ids.Add(id);
            else if (_unkId is { } unk) ids.Add(unk);
            else throw new ArgumentException($"character '{rune}' (U+{rune.Value:X4}) at offset {offset} is not in the alphabet", nameof(text));
            offset += rune.Utf16SequenceLength;
        }
        return ids.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipSpecialTokens: false);

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var sb = new StringBuilder(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_tokens.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not in the vocabulary (size {_tokens.Length})");
            if (skipSpecialTokens && id < Specials.Length) continue;
            sb.Append(_tokens[id]);
        }
        return sb.ToString();
    }

    /// <inheritdoc/>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        int special = Array.IndexOf(Specials, token);
        if (special >= 0) return special;
        if (Rune.DecodeFromUtf16(token, out var rune, out int used) == System.Buffers.OperationStatus.Done && used == token.Length
            && _idOfCodePoint.TryGetValue(rune.Value, out int id))
            return id;
        return null;
    }

    /// <inheritdoc/>
    public string? IdToToken(int id) => (uint)id < (uint)_tokens.Length ? _tokens[id] : null;

    /// <inheritdoc/>
    public bool IsSpecial(int id) => (uint)id < (uint)Specials.Length;

    private static IEnumerable<Rune> EnumerateRunes(string s, string paramName)
    {
        for (int i = 0; i < s.Length;)
        {
            if (Rune.DecodeFromUtf16(s.AsSpan(i), out var rune, out int used) != System.Buffers.OperationStatus.Done)
                throw new ArgumentException($"lone surrogate at offset {i}", paramName);
            yield return rune;
            i += used;
        }
    }
}
