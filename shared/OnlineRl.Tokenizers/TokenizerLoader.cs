namespace OnlineRl.Tokenizers;

/// <summary>Loads the tokenizer stored in a model directory.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Loads the tokenizer of a model directory: tokenizer.json (Hugging Face; BOS/EOS/pad from a
    /// tokenizer_config.json beside it when present), else GPT-2's encoder.json + vocab.bpe.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">No tokenizer file is there, or only one of encoder.json and
    /// vocab.bpe; the message names what is missing.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed; the message names the file and field.</exception>
    public static ByteLevelBpeTokenizer FromDirectory(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"tokenizer directory not found: {path}");
        string tokenizerJson = Path.Combine(path, "tokenizer.json");
        if (File.Exists(tokenizerJson))
        {
            string config = Path.Combine(path, "tokenizer_config.json");
            return ByteLevelBpeTokenizer.FromTokenizerJson(tokenizerJson, File.Exists(config) ? config : null);
        }
        string encoder = Path.Combine(path, "encoder.json");
        string merges = Path.Combine(path, "vocab.bpe");
        bool hasEncoder = File.Exists(encoder), hasMerges = File.Exists(merges);
        if (hasEncoder && hasMerges) return ByteLevelBpeTokenizer.FromGpt2Files(encoder, merges);
        if (hasEncoder) throw new FileNotFoundException($"{path}: has encoder.json but no vocab.bpe (GPT-2 tokenizers need both)", merges);
        if (hasMerges) throw new FileNotFoundException($"{path}: has vocab.bpe but no encoder.json (GPT-2 tokenizers need both)", encoder);
        throw new FileNotFoundException($"{path}: no tokenizer found: expected tokenizer.json, or encoder.json + vocab.bpe", tokenizerJson);
    }
}
