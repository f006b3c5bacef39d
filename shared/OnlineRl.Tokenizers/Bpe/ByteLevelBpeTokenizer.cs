using System.Buffers;
using System.Text;
using OnlineRl.Tokenizers.Text;

namespace OnlineRl.Tokenizers;

/// <summary>Text normalization applied before pre-tokenization (tokenizer.json <c>normalizer</c>).</summary>
public enum TextNormalization
{
    /// <summary>No normalization.</summary>
    None,

    /// <summary>Unicode Normalization Form C (Qwen, Llama 3).</summary>
    Nfc,
}

/// <summary>
/// A byte-level BPE tokenizer (GPT-2, Qwen, Llama 3 family), loaded from a Hugging Face tokenizer.json
/// (<see cref="FromTokenizerJson(string, string?)"/>) or GPT-2's encoder.json + vocab.bpe
/// (<see cref="FromGpt2Files"/>); see also <see cref="TokenizerLoader.FromDirectory"/>.
/// Encoding: added tokens are matched first (leftmost, longest first), the rest is normalized,
/// pre-tokenized (regex splits), mapped to bytes and merged by BPE. Immutable and thread-safe.
/// </summary>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    /// <summary>Default number of pre-tokenized pieces kept in the BPE cache.</summary>
    public const int DefaultCacheCapacity = 200_000;

    private readonly BpeModel _model;
    private readonly PreTokenizer _preTokenizer;
    private readonly TextNormalization _normalization;
    private readonly AddedToken[] _addedTokens;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly AddedTokenMatcher _rawMatcher;
    private readonly AddedTokenMatcher _normalizedMatcher;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;
    // Decoding: the bytes of every id, concatenated; id i is _tokenBytes[_tokenStarts[i] ..][.. _tokenLengths[i]]
    // (length -1: no token has this id).
    private readonly byte[] _tokenBytes;
    private readonly int[] _tokenStarts;
    private readonly int[] _tokenLengths;
    private readonly bool[] _isSpecial;

    internal ByteLevelBpeTokenizer(BpeModel model, PreTokenizer preTokenizer, TextNormalization normalization,
        IReadOnlyList<AddedToken> addedTokens, int[] prefixIds, int[] suffixIds, int? bosId, int? eosId, int? padId)
    {
        _model = model;
        _preTokenizer = preTokenizer;
        _normalization = normalization;
        _addedTokens = addedTokens.ToArray();
        _addedByContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        _addedById = new Dictionary<int, AddedToken>();
        foreach (var t in _addedTokens)
        {
            _addedByContent[t.Content] = t;
            _addedById[t.Id] = t;
        }
        _rawMatcher = new AddedTokenMatcher(_addedTokens.Where(t => !t.Normalized));
        _normalizedMatcher = new AddedTokenMatcher(_addedTokens.Where(t => t.Normalized));
        _prefixIds = prefixIds;
        _suffixIds = suffixIds;
        VocabSize = Math.Max(model.IdCount, _addedTokens.Length == 0 ? 0 : _addedTokens.Max(t => t.Id) + 1);
        BosId = bosId;
        EosId = eosId;
        PadId = padId;
        foreach (int? id in new[] { bosId, eosId, padId })
            if (id is { } v && (uint)v >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(bosId), $"special token id {v} is outside the vocabulary (size {VocabSize})");
        (_tokenBytes, _tokenStarts, _tokenLengths, _isSpecial) = BuildDecodeTables();
    }

    private ByteLevelBpeTokenizer(ByteLevelBpeTokenizer other, int? bosId, int? eosId, int? padId)
    {
        _model = other._model;
        _preTokenizer = other._preTokenizer;
        _normalization = other._normalization;
        _addedTokens = other._addedTokens;
        _addedByContent = other._addedByContent;
        _addedById = other._addedById;
        _rawMatcher = other._rawMatcher;
        _normalizedMatcher = other._normalizedMatcher;
        _prefixIds = other._prefixIds;
        _suffixIds = other._suffixIds;
        _tokenBytes = other._tokenBytes;
        _tokenStarts = other._tokenStarts;
        _tokenLengths = other._tokenLengths;
        _isSpecial = other._isSpecial;
        VocabSize = other.VocabSize;
        BosId = bosId;
        EosId = eosId;
        PadId = padId;
    }

    /// <summary>Loads a Hugging Face tokenizer.json (and, when given, the BOS/EOS/pad tokens named in a
    /// tokenizer_config.json next to it).</summary>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed or uses an unsupported feature; the
    /// message names the file and field.</exception>
    public static ByteLevelBpeTokenizer FromTokenizerJson(string tokenizerJsonPath, string? tokenizerConfigPath = null) =>
        HuggingFaceTokenizerJson.Load(tokenizerJsonPath, tokenizerConfigPath);

    /// <summary>Parses the text of a tokenizer.json; <paramref name="sourceName"/> is used in error messages.</summary>
    /// <exception cref="TokenizerFormatException">The JSON is malformed or uses an unsupported feature.</exception>
    public static ByteLevelBpeTokenizer ParseTokenizerJson(string json, string sourceName = "tokenizer.json") =>
        HuggingFaceTokenizerJson.Parse(json, sourceName, configJson: null, configSource: null);

    /// <summary>Loads GPT-2's encoder.json (token to id) and vocab.bpe (ranked merges). BOS and EOS are
    /// <c>&lt;|endoftext|&gt;</c>; there is no padding token.</summary>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed; the message names it.</exception>
    public static ByteLevelBpeTokenizer FromGpt2Files(string encoderJsonPath, string vocabBpePath) =>
        Gpt2Files.Load(encoderJsonPath, vocabBpePath);

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

    /// <summary>The normalization applied before pre-tokenization.</summary>
    public TextNormalization Normalization => _normalization;

    /// <summary>Ids the tokenizer.json post-processor puts before a single sequence (e.g. Llama 3's
    /// <c>&lt;|begin_of_text|&gt;</c>); added only when encoding with <c>addSpecialTokens: true</c>.</summary>
    public IReadOnlyList<int> TemplatePrefixIds => _prefixIds;

    /// <summary>Ids the post-processor puts after a single sequence.</summary>
    public IReadOnlyList<int> TemplateSuffixIds => _suffixIds;

    /// <summary>Number of pre-tokenized pieces in the BPE cache.</summary>
    public int CacheCount => _model.CacheCount;

    /// <summary>Empties the BPE cache.</summary>
    public void ClearCache() => _model.ClearCache();

    internal PreTokenizer PreTokenizer => _preTokenizer;

    internal BpeModel Model => _model;

    /// <summary>A copy with other BOS/EOS/padding ids (null: none); the vocabulary and cache are shared.</summary>
    public ByteLevelBpeTokenizer WithSpecialTokenIds(int? bosId, int? eosId, int? padId)
    {
        foreach (int? id in new[] { bosId, eosId, padId })
            if (id is { } v && (uint)v >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(bosId), $"special token id {v} is outside the vocabulary (size {VocabSize})");
        return new ByteLevelBpeTokenizer(this, bosId, eosId, padId);
    }

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
        var pieces = new List<ReadOnlyMemory<char>>();
        if (addSpecialTokens) output.AddRange(_prefixIds);
        if (_rawMatcher.IsEmpty)
        {
            EncodeNormalizing(text, output, pieces, includeSpecial);
        }
        else
        {
            int pos = 0;
            while (_rawMatcher.TryFindNext(text, pos, includeSpecial, out int start, out int end, out var token))
            {
                if (start > pos) EncodeNormalizing(text[pos..start], output, pieces, includeSpecial);
                output.Add(token.Id);
                pos = end;
            }
            if (pos < text.Length) EncodeNormalizing(pos == 0 ? text : text[pos..], output, pieces, includeSpecial);
        }
        if (addSpecialTokens) output.AddRange(_suffixIds);
        return output.ToArray();
    }

    /// <summary>Encodes many texts in parallel (same result as <see cref="Encode(string)"/> on each).</summary>
    public int[][] EncodeBatch(IReadOnlyList<string> texts, SpecialTokenPolicy policy = SpecialTokenPolicy.Allow)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var result = new int[texts.Count][];
        Parallel.For(0, texts.Count, i => result[i] = Encode(texts[i], policy));
        return result;
    }

    private void ThrowIfSpecialTokenPresent(string text)
    {
        // Special tokens are looked for in the raw text and, for normalized ones, in the normalized text.
        if (!_rawMatcher.IsEmpty)
            FindSpecial(_rawMatcher, text);
        if (!_normalizedMatcher.IsEmpty)
            FindSpecial(_normalizedMatcher, Normalize(text));

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

    private string Normalize(string text) => _normalization == TextNormalization.Nfc ? Nfc.Normalize(text) : text;

    private void EncodeNormalizing(string segment, List<int> output, List<ReadOnlyMemory<char>> pieces, bool includeSpecial)
    {
        string normalized = Normalize(segment);
        if (_normalizedMatcher.IsEmpty)
        {
            EncodePlain(normalized.AsMemory(), output, pieces);
            return;
        }
        int pos = 0;
        while (_normalizedMatcher.TryFindNext(normalized, pos, includeSpecial, out int start, out int end, out var token))
        {
            if (start > pos) EncodePlain(normalized.AsMemory(pos, start - pos), output, pieces);
            output.Add(token.Id);
            pos = end;
        }
        if (pos < normalized.Length) EncodePlain(normalized.AsMemory(pos), output, pieces);
    }

    private void EncodePlain(ReadOnlyMemory<char> text, List<int> output, List<ReadOnlyMemory<char>> pieces)
    {
        pieces.Clear();
        _preTokenizer.Run(text, pieces);
        foreach (var piece in pieces) _model.EncodePiece(piece.Span, output);
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipSpecialTokens: false);

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        int total = 0;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize || _tokenLengths[id] < 0)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not in the vocabulary (size {VocabSize})");
            if (!(skipSpecialTokens && _isSpecial[id])) total += _tokenLengths[id];
        }
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(total, 1));
        int n = 0;
        foreach (int id in ids)
        {
            if (skipSpecialTokens && _isSpecial[id]) continue;
            _tokenBytes.AsSpan(_tokenStarts[id], _tokenLengths[id]).CopyTo(buffer.AsSpan(n));
            n += _tokenLengths[id];
        }
        // Invalid UTF-8 (e.g. a character cut between tokens) becomes U+FFFD per maximal invalid
        // subsequence, as Rust's from_utf8_lossy does in the Hugging Face decoder.
        string text = Encoding.UTF8.GetString(buffer, 0, n);
        ArrayPool<byte>.Shared.Return(buffer);
        return text;
    }

    /// <summary>The UTF-8 bytes a token id decodes to (for streaming decoders that join partial characters).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id)
    {
        if ((uint)id >= (uint)VocabSize || _tokenLengths[id] < 0)
            throw new ArgumentOutOfRangeException(nameof(id), $"token id {id} is not in the vocabulary (size {VocabSize})");
        return _tokenBytes.AsSpan(_tokenStarts[id], _tokenLengths[id]);
    }

    /// <inheritdoc/>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_addedByContent.TryGetValue(token, out var added)) return added.Id;
        return _model.TokenToId(token);
    }

    /// <inheritdoc/>
    public string? IdToToken(int id) =>
        _addedById.TryGetValue(id, out var added) ? added.Content : _model.IdToToken(id);

    /// <inheritdoc/>
    public bool IsSpecial(int id) => (uint)id < (uint)_isSpecial.Length && _isSpecial[id];

    // Token bytes as the Hugging Face ByteLevel decoder produces them: each character mapped back to its
    // byte when all characters of the token are byte-level characters, else the token's UTF-8 text.
    private (byte[] Bytes, int[] Starts, int[] Lengths, bool[] Special) BuildDecodeTables()
    {
        var starts = new int[VocabSize];
        var lengths = new int[VocabSize];
        var special = new bool[VocabSize];
        var bytes = new List<byte>(VocabSize * 7);
        for (int id = 0; id < VocabSize; id++)
        {
            string? token = IdToToken(id);
            if (token is null)
            {
                lengths[id] = -1;
                continue;
            }
            starts[id] = bytes.Count;
            byte[]? mapped = ByteLevel.FromByteLevelString(token);
            bytes.AddRange(mapped ?? Encoding.UTF8.GetBytes(token));
            lengths[id] = bytes.Count - starts[id];
            special[id] = _addedById.TryGetValue(id, out var added) && added.Special;
        }
        return (bytes.ToArray(), starts, lengths, special);
    }
}
