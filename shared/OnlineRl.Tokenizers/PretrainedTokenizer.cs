using System.Text;

namespace OnlineRl.Tokenizers;

/// <summary>
/// A checkpoint's tokenizer (<see cref="ByteLevelBpeTokenizer"/>, <see cref="SentencePieceBpeTokenizer"/>):
/// a Microsoft.ML.Tokenizers model plus what that library lacks and this class adds, the Hugging Face
/// handling of added tokens. Encoding: added tokens are matched first in the raw text (leftmost, longest
/// first; lstrip/rstrip/single_word as in tokenizer.json), the text between them is normalized, added tokens
/// flagged <c>normalized</c> are matched in the normalized text, and the rest goes to the model.
/// <see cref="SpecialTokenPolicy"/> keeps user text from producing control tokens. Decoding writes added
/// tokens as their text and lets the model decode the ids between them. Immutable and thread-safe.
/// </summary>
public abstract class PretrainedTokenizer : ITokenizer
{
    private readonly AddedToken[] _addedTokens;
    private readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> _addedById = new();
    private readonly AddedTokenMatcher _rawMatcher;
    private readonly AddedTokenMatcher _normalizedMatcher;
    private readonly IReadOnlyDictionary<string, int> _modelVocab;
    private readonly string?[] _idToToken;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;

    /// <param name="modelVocab">The model's vocabulary (token string to id), without the added tokens.</param>
    /// <param name="addedTokens">Tokens matched in the text before the model runs (they may also be in the vocabulary).</param>
    /// <param name="prefixIds">Ids put before a sequence when encoding with <c>addSpecialTokens</c>.</param>
    /// <param name="suffixIds">Ids put after a sequence when encoding with <c>addSpecialTokens</c>.</param>
    /// <param name="bosId">Beginning-of-sequence id, or null.</param>
    /// <param name="eosId">End-of-sequence id, or null.</param>
    /// <param name="padId">Padding id, or null.</param>
    private protected PretrainedTokenizer(IReadOnlyDictionary<string, int> modelVocab, IReadOnlyList<AddedToken> addedTokens,
        int[] prefixIds, int[] suffixIds, int? bosId, int? eosId, int? padId)
    {
        _modelVocab = modelVocab;
        _addedTokens = addedTokens.ToArray();
        foreach (var t in _addedTokens)
        {
            _addedByContent[t.Content] = t;
            _addedById[t.Id] = t;
        }
        _rawMatcher = new AddedTokenMatcher(_addedTokens.Where(t => !t.Normalized));
        _normalizedMatcher = new AddedTokenMatcher(_addedTokens.Where(t => t.Normalized));
        int maxId = -1;
        foreach (int id in modelVocab.Values) maxId = Math.Max(maxId, id);
        foreach (var t in _addedTokens) maxId = Math.Max(maxId, t.Id);
        VocabSize = maxId + 1;
        _idToToken = new string?[VocabSize];
        foreach (var (token, id) in modelVocab) _idToToken[id] = token;
        foreach (var t in _addedTokens) _idToToken[t.Id] = t.Content;
        _prefixIds = prefixIds;
        _suffixIds = suffixIds;
        foreach (int? id in new[] { bosId, eosId, padId })
            if (id is { } v && (uint)v >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(bosId), $"special token id {v} is outside the vocabulary (size {VocabSize})");
        BosId = bosId;
        EosId = eosId;
        PadId = padId;
    }

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public int? BosId { get; }

    /// <inheritdoc/>
    public int? EosId { get; }

    /// <inheritdoc/>
    public int? PadId { get; }

    /// <summary>The added tokens (special and not), in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens => _addedTokens;

    /// <summary>Ids the tokenizer.json post-processor puts before a single sequence (e.g. Llama 3's
    /// <c>&lt;|begin_of_text|&gt;</c>); added only when encoding with <c>addSpecialTokens: true</c>.</summary>
    public IReadOnlyList<int> TemplatePrefixIds => _prefixIds;

    /// <summary>Ids the post-processor puts after a single sequence.</summary>
    public IReadOnlyList<int> TemplateSuffixIds => _suffixIds;

    /// <summary>Normalizes text between added tokens (NFC, SentencePiece's whitespace escaping...).</summary>
    private protected abstract string Normalize(string text);

    /// <summary>Appends the model's ids for normalized text that holds no added token.</summary>
    private protected abstract void EncodeNormalized(ReadOnlyMemory<char> text, List<int> output);

    /// <summary>Decodes a run of model ids (no added tokens among them).</summary>
    private protected abstract string DecodeModelIds(List<int> ids);

    /// <inheritdoc/>
    public int[] Encode(string text) => Encode(text, SpecialTokenPolicy.Allow, addSpecialTokens: false);

    /// <summary>Encodes text with the given treatment of special tokens written in it.</summary>
    /// <exception cref="ArgumentException"><paramref name="policy"/> is <see cref="SpecialTokenPolicy.Reject"/>
    /// and the text holds a special token.</exception>
    public int[] Encode(string text, SpecialTokenPolicy policy) => Encode(text, policy, addSpecialTokens: false);

    /// <summary>Encodes text; with <paramref name="addSpecialTokens"/> the post-processor's template ids
    /// (<see cref="TemplatePrefixIds"/>, <see cref="TemplateSuffixIds"/>) are added around it.</summary>
    /// <exception cref="ArgumentException"><paramref name="policy"/> is <see cref="SpecialTokenPolicy.Reject"/>
    /// and the text holds a special token.</exception>
    public int[] Encode(string text, SpecialTokenPolicy policy, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (policy == SpecialTokenPolicy.Reject) ThrowIfSpecialTokenPresent(text);
        bool includeSpecial = policy == SpecialTokenPolicy.Allow;
        var output = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) output.AddRange(_prefixIds);
        int pos = 0;
        while (_rawMatcher.TryFindNext(text, pos, includeSpecial, out int start, out int end, out var token))
        {
            if (start > pos) EncodeSegment(text[pos..start], output, includeSpecial);
            output.Add(token.Id);
            pos = end;
        }
        if (pos < text.Length) EncodeSegment(pos == 0 ? text : text[pos..], output, includeSpecial);
        if (addSpecialTokens) output.AddRange(_suffixIds);
        return output.ToArray();
    }

    private void EncodeSegment(string segment, List<int> output, bool includeSpecial)
    {
        string normalized = Normalize(segment);
        int pos = 0;
        while (_normalizedMatcher.TryFindNext(normalized, pos, includeSpecial, out int start, out int end, out var token))
        {
            if (start > pos) EncodeNormalized(normalized.AsMemory(pos, start - pos), output);
            output.Add(token.Id);
            pos = end;
        }
        if (pos < normalized.Length) EncodeNormalized(normalized.AsMemory(pos), output);
    }

    private void ThrowIfSpecialTokenPresent(string text)
    {
        // Special tokens are looked for in the raw text and, for normalized ones, in the normalized text.
        FindSpecial(_rawMatcher, text);
        if (!_normalizedMatcher.IsEmpty) FindSpecial(_normalizedMatcher, Normalize(text));

        static void FindSpecial(AddedTokenMatcher matcher, string s)
        {
            int pos = 0;
            while (matcher.TryFindNext(s, pos, includeSpecial: true, out int start, out int end, out var token))
            {
                if (token.Special)
                    throw new ArgumentException($"the text holds the special token '{token.Content}' at offset {start} (SpecialTokenPolicy.Reject)", "text");
                pos = end;
            }
        }
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipSpecialTokens: false);

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        foreach (int id in ids)
            if ((uint)id >= (uint)VocabSize || _idToToken[id] is null)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not in the vocabulary (size {VocabSize})");
        var text = new StringBuilder();
        var run = new List<int>(ids.Length);
        foreach (int id in ids)
        {
            if (!_addedById.TryGetValue(id, out var added))
            {
                run.Add(id);
                continue;
            }
            if (run.Count > 0)
            {
                text.Append(DecodeModelIds(run));
                run.Clear();
            }
            if (!(skipSpecialTokens && added.Special)) text.Append(DecodedText(added));
        }
        if (run.Count > 0) text.Append(DecodeModelIds(run));
        return text.ToString();
    }

    /// <summary>The text an added token decodes to (its content unless the model's decoder maps it).</summary>
    private protected virtual string DecodedText(AddedToken token) => token.Content;

    /// <inheritdoc/>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_addedByContent.TryGetValue(token, out var added)) return added.Id;
        return _modelVocab.TryGetValue(token, out int id) ? id : null;
    }

    /// <inheritdoc/>
    public string? IdToToken(int id) => (uint)id < (uint)VocabSize ? _idToToken[id] : null;

    /// <inheritdoc/>
    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var added) && added.Special;
}
