using System.Text;
using Microsoft.ML.Tokenizers;

namespace OnlineRl.Tokenizers;

/// <summary>
/// A SentencePiece BPE model (tokenizer.model of Llama 2, Mistral and other byte-fallback BPE checkpoints).
/// Microsoft.ML.Tokenizers 3.0 does the normalization (<see cref="SentencePieceNormalizer"/>: dummy prefix,
/// '▁' for spaces) and the merges (<see cref="BpeTokenizer"/>). Its own <see cref="SentencePieceTokenizer"/>
/// is not used, because it differs from sentencepiece in three places measured here (against Debian's
/// python3-sentencepiece, on GSM8K-trained models), which this class does itself:
/// <list type="bullet">
/// <item>merges: it breaks ties between equal-score merges from the right ("▁▁▁" becomes "▁" "▁▁" instead
/// of "▁▁" "▁"; 7 of 17,595 GSM8K texts on a Llama-2-style model). The model's merges are rebuilt, ranked by
/// the score of the piece they make, and handed to <see cref="BpeTokenizer"/>, which merges leftmost first;</item>
/// <item><c>remove_extra_whitespaces</c>: its normalizer drops one-character texts ("a", " x");</item>
/// <item>decoding: it writes one U+FFFD per invalid UTF-8 sequence of byte pieces, sentencepiece one per byte.</item>
/// </list>
/// Also ours: byte fallback (characters missing from the vocabulary become their UTF-8 byte pieces, or one
/// unknown token per run without byte fallback, as in sentencepiece) and the added-token handling of
/// <see cref="PretrainedTokenizer"/>: control pieces such as <c>&lt;s&gt;</c> are special tokens matched in
/// the text (as the Hugging Face tokenizers do; sentencepiece never matches them), user-defined pieces are
/// matched in the normalized text. Text between added tokens is encoded and decoded as a text of its own
/// (its own dummy prefix), like Hugging Face's "legacy" Llama tokenizer.
/// </summary>
public sealed class SentencePieceBpeTokenizer : PretrainedTokenizer
{
    private readonly SentencePieceNormalizer _normalizer;
    private readonly BpeTokenizer _bpe;
    private readonly bool _removeExtraWhitespaces;
    private readonly bool _stripLeadingSpace;
    private readonly int[] _byteOfId;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _normalPieces;
    private readonly int[] _byteIds;
    private readonly bool _byteFallback;
    private readonly int _unkId;

    private SentencePieceBpeTokenizer(SentencePieceModelFile model, Dictionary<string, int> allPieces,
        Dictionary<string, int> normalPieces, List<string> merges, int[] byteIds, IReadOnlyList<AddedToken> added,
        int? bosId, int? eosId, int? padId)
        : base(allPieces, added, [], [], bosId, eosId, padId)
    {
        _normalizer = new SentencePieceNormalizer(removeExtraWhiteSpaces: false, model.AddDummyPrefix, model.EscapeWhitespaces,
            treatWhitespaceAsSuffix: false, specialTokens: null);
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        // sentencepiece drops the leading space of the first piece when either setting may have put it there.
        _stripLeadingSpace = model.AddDummyPrefix || model.RemoveExtraWhitespaces;
        _byteOfId = new int[model.Pieces.Count];
        Array.Fill(_byteOfId, -1);
        for (int b = 0; b < 256; b++) if (byteIds[b] >= 0) _byteOfId[byteIds[b]] = b;
        _bpe = BpeTokenizer.Create(new BpeOptions(normalPieces) { Merges = merges });
        _normalPieces = normalPieces.GetAlternateLookup<ReadOnlySpan<char>>();
        _byteIds = byteIds;
        _byteFallback = model.ByteFallback;
        _unkId = model.UnkId;
    }

    /// <summary>Loads a SentencePiece model file (and, when given, the BOS/EOS/pad tokens named in a
    /// tokenizer_config.json; otherwise those of the model's trainer settings).</summary>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed or the model is not a supported kind
    /// (Unigram, NFKC normalization, whitespace as suffix); the message names the file and field.</exception>
    public static SentencePieceBpeTokenizer FromModelFile(string tokenizerModelPath, string? tokenizerConfigPath = null)
    {
        if (!File.Exists(tokenizerModelPath)) throw new FileNotFoundException($"tokenizer.model not found: {tokenizerModelPath}", tokenizerModelPath);
        var config = tokenizerConfigPath is null ? null : TokenizerConfig.Load(tokenizerConfigPath);
        byte[] bytes = File.ReadAllBytes(tokenizerModelPath);
        string source = tokenizerModelPath;
        var model = SentencePieceModelFile.Parse(bytes, source);
        if (model.ModelType != SentencePieceModelFile.ModelTypeBpe)
            throw new TokenizerFormatException($"{source}: field 'trainer_spec.model_type' is {(model.ModelType == SentencePieceModelFile.ModelTypeUnigram ? "UNIGRAM" : model.ModelType.ToString(System.Globalization.CultureInfo.InvariantCulture))}: only BPE SentencePiece models (Llama 2, Mistral) are supported (Microsoft.ML.Tokenizers 3.0's Unigram encoding differs from sentencepiece's)");
        if (model.PrecompiledCharsmapLength > 0 && model.NormalizerName != "identity")
            throw new TokenizerFormatException($"{source}: field 'normalizer_spec.name' is '{model.NormalizerName}': only the 'identity' normalization is supported");
        if (model.TreatWhitespaceAsSuffix)
            throw new TokenizerFormatException($"{source}: field 'trainer_spec.treat_whitespace_as_suffix' is true: not supported");

        var allPieces = new Dictionary<string, int>(StringComparer.Ordinal);
        var normalPieces = new Dictionary<string, int>(StringComparer.Ordinal);
        var byteIds = new int[256];
        Array.Fill(byteIds, -1);
        var added = new List<AddedToken>();
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var p = model.Pieces[id];
            allPieces.TryAdd(p.Piece, id);
            switch (p.Type)
            {
                case SentencePieceType.Normal:
                    if (p.Piece.Contains(' ')) throw new TokenizerFormatException($"{source}: field 'pieces[{id}].piece' holds a space, which SentencePiece BPE pieces do not");
                    normalPieces.TryAdd(p.Piece, id);
                    break;
                case SentencePieceType.Byte:
                    if (p.Piece.Length != 6 || !p.Piece.StartsWith("<0x", StringComparison.Ordinal) || p.Piece[5] != '>'
                        || !byte.TryParse(p.Piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
                        throw new TokenizerFormatException($"{source}: field 'pieces[{id}].piece' is '{p.Piece}': a byte piece must read <0xXX>");
                    byteIds[b] = id;
                    break;
                case SentencePieceType.Control or SentencePieceType.Unknown:
                    added.Add(new AddedToken(id, p.Piece, Special: true));
                    break;
                case SentencePieceType.UserDefined:
                    added.Add(new AddedToken(id, p.Piece, Special: false, Normalized: true));
                    break;
            }
        }
        if ((uint)model.UnkId >= (uint)model.Pieces.Count)
            throw new TokenizerFormatException($"{source}: field 'trainer_spec.unk_id' is {model.UnkId}, outside the {model.Pieces.Count} pieces");
        if (model.ByteFallback && byteIds.Contains(-1))
            throw new TokenizerFormatException($"{source}: field 'trainer_spec.byte_fallback' is true but the byte piece <0x{Array.IndexOf(byteIds, -1):X2}> is missing");

        int? Trainer(int id) => id >= 0 && id < model.Pieces.Count ? id : null;
        var (bos, eos, pad) = config?.SpecialIds(c => allPieces.TryGetValue(c, out int id) ? id : null) ?? (null, null, null);
        return new SentencePieceBpeTokenizer(model, allPieces, normalPieces, Merges(model, normalPieces), byteIds, added,
            bos ?? Trainer(model.BosId), eos ?? Trainer(model.EosId), pad ?? Trainer(model.PadId));
    }

    // sentencepiece merges the adjacent pair whose concatenation is the highest-scoring piece (leftmost
    // first among equals); as ranked merges: every split of every piece into two pieces, by descending
    // score of the piece (then by id, for pieces of equal score).
    private static List<string> Merges(SentencePieceModelFile model, Dictionary<string, int> pieces)
    {
        var ranked = new List<(float Score, int Id, string Merge)>();
        foreach (var (piece, id) in pieces)
        {
            for (int k = 1; k < piece.Length; k++)
            {
                if (char.IsLowSurrogate(piece[k])) continue;
                string left = piece[..k], right = piece[k..];
                if (pieces.ContainsKey(left) && pieces.ContainsKey(right)) ranked.Add((model.Pieces[id].Score, id, left + " " + right));
            }
        }
        ranked.Sort((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Id.CompareTo(b.Id));
        return ranked.ConvertAll(m => m.Merge);
    }

    private protected override string Normalize(string text)
    {
        // remove_extra_whitespaces: no leading, trailing or repeated spaces (done here, see the class remarks).
        if (_removeExtraWhitespaces) text = string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        return text.Length == 0 ? text : _normalizer.Normalize(text);
    }

    private protected override void EncodeNormalized(ReadOnlyMemory<char> text, List<int> output)
    {
        // Characters missing from the vocabulary never merge: BPE runs on the stretches between them.
        var span = text.Span;
        int runStart = 0;
        bool previousUnknown = false;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < span.Length;)
        {
            int length = char.IsHighSurrogate(span[i]) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]) ? 2 : 1;
            var character = span.Slice(i, length);
            if (_normalPieces.ContainsKey(character))
            {
                previousUnknown = false;
            }
            else
            {
                if (i > runStart) output.AddRange(_bpe.EncodeToIds(span[runStart..i], considerPreTokenization: false, considerNormalization: false));
                if (_byteFallback)
                {
                    int n = Encoding.UTF8.GetBytes(character, utf8);
                    for (int k = 0; k < n; k++) output.Add(_byteIds[utf8[k]]);
                }
                else if (!previousUnknown)
                {
                    output.Add(_unkId);
                }
                previousUnknown = true;
                runStart = i + length;
            }
            i += length;
        }
        if (runStart < span.Length) output.AddRange(_bpe.EncodeToIds(span[runStart..], considerPreTokenization: false, considerNormalization: false));
    }

    // As sentencepiece: '▁' is a space, the first piece's leading one is dropped, and runs of byte pieces become
    // their characters, each byte that is not part of a valid UTF-8 character becoming U+FFFD.
    private protected override string DecodeModelIds(List<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        bool atStart = true;
        foreach (int id in ids)
        {
            if (_byteOfId[id] >= 0)
            {
                bytes.Add((byte)_byteOfId[id]);
                continue;
            }
            FlushBytes();
            string piece = IdToToken(id)!;
            if (atStart && _stripLeadingSpace && piece.StartsWith('▁')) piece = piece[1..];
            text.Append(piece.Replace('▁', ' '));
            atStart &= piece.Length == 0;
        }
        FlushBytes();
        return text.ToString();

        void FlushBytes()
        {
            var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes);
            while (span.Length > 0)
            {
                bool valid = System.Text.Rune.DecodeFromUtf8(span, out var rune, out int consumed) == System.Buffers.OperationStatus.Done;
                text.Append(valid ? rune.ToString() : "\uFFFD");
                span = span[(valid ? consumed : 1)..];
                atStart = false;
            }
            bytes.Clear();
        }
    }
}
