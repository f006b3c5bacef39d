using System.Text;
using Microsoft.ML.Tokenizers;
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
/// A byte-level BPE tokenizer (GPT-2, Qwen2/2.5/3, Llama 3 family) whose BPE and byte-level decoding are
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>. Loaded from a Hugging Face tokenizer.json
/// (<see cref="FromTokenizerJson(string, string?)"/>), vocab.json + merges.txt
/// (<see cref="FromVocabAndMerges"/>) or GPT-2's encoder.json + vocab.bpe (<see cref="FromGpt2Files"/>); see
/// also <see cref="TokenizerLoader.FromDirectory"/>. Ours on top (see <see cref="PretrainedTokenizer"/>):
/// added tokens, NFC, and the pre-tokenizer (tokenizer.json <c>Split</c>/<c>Digits</c>/<c>ByteLevel</c>
/// with the regex translated for .NET, see <see cref="SplitRegex"/>), which cuts the text into the pieces
/// the library's BPE merges; tokenizer.json's <c>ignore_merges</c> (Llama 3) is applied here too.
/// </summary>
public sealed class ByteLevelBpeTokenizer : PretrainedTokenizer
{
    private readonly BpeTokenizer _bpe;
    private readonly PreTokenizer _preTokenizer;
    private readonly bool _ignoreMerges;

    internal ByteLevelBpeTokenizer(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        string? unknownToken, bool ignoreMerges, PreTokenizer preTokenizer, TextNormalization normalization,
        IReadOnlyList<AddedToken> addedTokens, int[] prefixIds, int[] suffixIds, int? bosId, int? eosId, int? padId)
        : base(vocab, addedTokens, prefixIds, suffixIds, bosId, eosId, padId)
    {
        // The library reads a merge as "left right"; byte-level tokens never hold a space (it is 'Ġ').
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges.Select(m => m.Left + " " + m.Right),
            ByteLevel = true,
            UnknownToken = unknownToken,
        });
        _preTokenizer = preTokenizer;
        _ignoreMerges = ignoreMerges;
        Normalization = normalization;
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
        HuggingFaceTokenizerJson.Parse(json, sourceName, config: null);

    /// <summary>Loads GPT-2's encoder.json (token to id) and vocab.bpe (ranked merges). BOS and EOS are
    /// <c>&lt;|endoftext|&gt;</c>; there is no padding token.</summary>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed; the message names it.</exception>
    public static ByteLevelBpeTokenizer FromGpt2Files(string encoderJsonPath, string vocabBpePath) =>
        VocabMergesFiles.Load(encoderJsonPath, vocabBpePath, config: null);

    /// <summary>Loads a Hugging Face checkpoint's vocab.json + merges.txt. The pre-tokenizer and normalization
    /// follow <c>tokenizer_class</c> of the tokenizer_config.json (GPT2Tokenizer when absent; Qwen2Tokenizer:
    /// Qwen's regex and NFC); added tokens come from its <c>added_tokens_decoder</c>, BOS/EOS/pad from its
    /// <c>bos_token</c>/<c>eos_token</c>/<c>pad_token</c>.</summary>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed or names an unsupported tokenizer class.</exception>
    public static ByteLevelBpeTokenizer FromVocabAndMerges(string vocabJsonPath, string mergesTxtPath, string? tokenizerConfigPath = null) =>
        VocabMergesFiles.Load(vocabJsonPath, mergesTxtPath, tokenizerConfigPath is null ? null : TokenizerConfig.Load(tokenizerConfigPath));

    /// <summary>The normalization applied before pre-tokenization.</summary>
    public TextNormalization Normalization { get; }

    internal PreTokenizer PreTokenizer => _preTokenizer;

    private protected override string Normalize(string text) => Normalization == TextNormalization.Nfc ? Nfc.Normalize(text) : text;

    private protected override void EncodeNormalized(ReadOnlyMemory<char> text, List<int> output)
    {
        var pieces = new List<ReadOnlyMemory<char>>();
        _preTokenizer.Run(text, pieces);
        foreach (var piece in pieces)
        {
            // ignore_merges: a piece that is itself a vocabulary token is emitted as is (the library lacks this).
            if (_ignoreMerges && _bpe.Vocabulary.TryGetValue(ByteLevel.ToByteLevelString(Encoding.UTF8.GetBytes(piece.ToArray())), out int id))
            {
                output.Add(id);
                continue;
            }
            output.AddRange(_bpe.EncodeToIds(piece.Span, considerPreTokenization: false, considerNormalization: false));
        }
    }

    private protected override string DecodeModelIds(List<int> ids) => _bpe.Decode(ids);

    // As the Hugging Face ByteLevel decoder: a token made only of byte-level characters stands for those bytes.
    private protected override string DecodedText(AddedToken token) =>
        ByteLevel.FromByteLevelString(token.Content) is { } bytes ? Encoding.UTF8.GetString(bytes) : token.Content;
}
