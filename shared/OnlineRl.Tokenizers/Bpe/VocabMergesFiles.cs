using System.Text.Json;

namespace OnlineRl.Tokenizers;

/// <summary>
/// Reads a vocabulary file (token to id: GPT-2's encoder.json, a checkpoint's vocab.json) and a merges file
/// (one "a b" per line, ranked, after an optional "#version" header: vocab.bpe, merges.txt). These files do
/// not say how text is pre-tokenized: that follows the tokenizer class of tokenizer_config.json, as in
/// the Hugging Face library (GPT2Tokenizer when there is no config).
/// </summary>
internal static class VocabMergesFiles
{
    public const string EndOfText = "<|endoftext|>";

    /// <summary>Qwen2Tokenizer's pre-tokenizer regex (also in Qwen2/2.5/3's tokenizer.json).</summary>
    public const string QwenPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static ByteLevelBpeTokenizer Load(string vocabPath, string mergesPath, TokenizerConfig? config)
    {
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"{Path.GetFileName(vocabPath)} not found: {vocabPath}", vocabPath);
        if (!File.Exists(mergesPath)) throw new FileNotFoundException($"{Path.GetFileName(mergesPath)} not found: {mergesPath}", mergesPath);
        bool gpt2;
        switch (config?.TokenizerClass)
        {
            case null or "GPT2Tokenizer" or "GPT2TokenizerFast":
                gpt2 = true;
                break;
            case "Qwen2Tokenizer" or "Qwen2TokenizerFast":
                gpt2 = false;
                break;
            case var other:
                throw new TokenizerFormatException($"{config.Source}: field 'tokenizer_class' is '{other}': with vocab.json + merges.txt only GPT2Tokenizer and Qwen2Tokenizer are supported");
        }
        var vocab = ReadVocab(vocabPath);
        var merges = ReadMerges(mergesPath, vocab, Path.GetFileName(vocabPath));

        var added = config?.AddedTokens.ToList() ?? [];
        bool hasEndOfText = vocab.TryGetValue(EndOfText, out int endOfText);
        if (gpt2 && hasEndOfText && added.All(t => t.Content != EndOfText))
            added.Add(new AddedToken(endOfText, EndOfText, Special: true));
        int? TokenToId(string content) =>
            added.FirstOrDefault(t => t.Content == content)?.Id ?? (vocab.TryGetValue(content, out int id) ? id : null);
        var (bos, eos, pad) = config?.SpecialIds(TokenToId) ?? (null, null, null);
        if (gpt2 && hasEndOfText)
        {
            // GPT2Tokenizer's defaults when the config names no BOS/EOS.
            bos ??= endOfText;
            eos ??= endOfText;
        }
        PreTokenizerStep[] steps = gpt2
            ? [new ByteLevelStep(addPrefixSpace: false, useRegex: true)]
            : [new SplitStep(new SplitRegex(QwenPattern), SplitBehavior.Isolated, invert: false), new ByteLevelStep(addPrefixSpace: false, useRegex: false)];
        return new ByteLevelBpeTokenizer(vocab, merges, unknownToken: null, ignoreMerges: false, new PreTokenizer(steps),
            gpt2 ? TextNormalization.None : TextNormalization.Nfc, added, [], [], bos, eos, pad);
    }

    private static Dictionary<string, int> ReadVocab(string path)
    {
        var f = new JsonFields(path);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new TokenizerFormatException($"{path}: not valid JSON ({e.Message})", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new TokenizerFormatException($"{path}: must be a JSON object mapping tokens to ids");
            var seen = new Dictionary<int, string>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                int id = f.AsId(p.Value, $"[\"{p.Name}\"]");
                if (seen.TryGetValue(id, out var other)) throw f.Error($"[\"{p.Name}\"]", $"reuses id {id} (already '{other}')");
                seen[id] = p.Name;
                vocab[p.Name] = id;
            }
        }
        if (vocab.Count == 0) throw new TokenizerFormatException($"{path}: is empty");
        return vocab;
    }

    private static List<(string, string)> ReadMerges(string path, Dictionary<string, int> vocab, string vocabName)
    {
        var merges = new List<(string, string)>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            string[] parts = line.Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                throw new TokenizerFormatException($"{path}: line {lineNumber} is \"{line}\": expected two tokens separated by one space");
            if (!vocab.ContainsKey(parts[0]) || !vocab.ContainsKey(parts[1]) || !vocab.ContainsKey(parts[0] + parts[1]))
                throw new TokenizerFormatException($"{path}: line {lineNumber} (\"{line}\") uses a token missing from {vocabName}");
            merges.Add((parts[0], parts[1]));
        }
        if (merges.Count == 0) throw new TokenizerFormatException($"{path}: holds no merges");
        return merges;
    }
}
