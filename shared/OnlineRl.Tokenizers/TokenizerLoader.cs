namespace OnlineRl.Tokenizers;

/// <summary>Loads the tokenizer stored in a model directory.</summary>
public static class TokenizerLoader
{
    /// <summary>The tokenizer files <see cref="FromDirectory"/> reads (for copying a checkpoint's tokenizer).</summary>
    public static IReadOnlyList<string> FileNames { get; } =
        ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "encoder.json", "vocab.bpe", "tokenizer.model"];

    /// <summary>
    /// Loads the tokenizer of a model directory, the first of: tokenizer.json (byte-level BPE; when it is a
    /// SentencePiece conversion such as Llama 2's and tokenizer.model is there, that is loaded instead),
    /// vocab.json + merges.txt, GPT-2's encoder.json + vocab.bpe, tokenizer.model (SentencePiece BPE).
    /// BOS/EOS/pad (and, for vocab.json + merges.txt, the tokenizer class and added tokens) come from a
    /// tokenizer_config.json beside them when present.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">No tokenizer file is there, or only one of a pair of files;
    /// the message names what is missing.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed; the message names the file and field.</exception>
    public static PretrainedTokenizer FromDirectory(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"tokenizer directory not found: {path}");
        string In(string name) => Path.Combine(path, name);
        bool Has(string name) => File.Exists(In(name));
        string? config = Has("tokenizer_config.json") ? In("tokenizer_config.json") : null;
        bool hasModel = Has("tokenizer.model");
        if (Has("tokenizer.json") && !(hasModel && HuggingFaceTokenizerJson.IsSentencePieceConversion(In("tokenizer.json"))))
            return ByteLevelBpeTokenizer.FromTokenizerJson(In("tokenizer.json"), config);
        if (Has("vocab.json") && Has("merges.txt")) return ByteLevelBpeTokenizer.FromVocabAndMerges(In("vocab.json"), In("merges.txt"), config);
        if (Has("encoder.json") && Has("vocab.bpe")) return ByteLevelBpeTokenizer.FromGpt2Files(In("encoder.json"), In("vocab.bpe"));
        if (hasModel) return SentencePieceBpeTokenizer.FromModelFile(In("tokenizer.model"), config);
        foreach (var (present, missing, kind) in new[]
                 {
                     ("encoder.json", "vocab.bpe", "GPT-2 tokenizers"), ("vocab.bpe", "encoder.json", "GPT-2 tokenizers"),
                     ("vocab.json", "merges.txt", "BPE vocabularies"), ("merges.txt", "vocab.json", "BPE vocabularies"),
                 })
            if (Has(present)) throw new FileNotFoundException($"{path}: has {present} but no {missing} ({kind} need both)", In(missing));
        throw new FileNotFoundException(
            $"{path}: no tokenizer found: expected tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe, or tokenizer.model", In("tokenizer.json"));
    }
}
