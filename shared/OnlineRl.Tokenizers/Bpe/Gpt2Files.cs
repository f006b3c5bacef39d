using System.Text.Json;

namespace OnlineRl.Tokenizers;

/// <summary>Reads GPT-2's original files: encoder.json (token to id) and vocab.bpe (merges, one "a b" per line
/// after a "#version" header).</summary>
internal static class Gpt2Files
{
    public const string EndOfText = "<|endoftext|>";

    public static ByteLevelBpeTokenizer Load(string encoderJsonPath, string vocabBpePath)
    {
        if (!File.Exists(encoderJsonPath)) throw new FileNotFoundException($"encoder.json not found: {encoderJsonPath}", encoderJsonPath);
        if (!File.Exists(vocabBpePath)) throw new FileNotFoundException($"vocab.bpe not found: {vocabBpePath}", vocabBpePath);
        var f = new JsonFields(encoderJsonPath);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(encoderJsonPath)); }
        catch (JsonException e) { throw new TokenizerFormatException($"{encoderJsonPath}: not valid JSON ({e.Message})", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new TokenizerFormatException($"{encoderJsonPath}: must be a JSON object mapping tokens to ids");
            var seen = new Dictionary<int, string>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                int id = f.AsId(p.Value, $"[\"{p.Name}\"]");
                if (seen.TryGetValue(id, out var other)) throw f.Error($"[\"{p.Name}\"]", $"reuses id {id} (already '{other}')");
                seen[id] = p.Name;
                vocab[p.Name] = id;
            }
        }
        if (vocab.Count == 0) throw new TokenizerFormatException($"{encoderJsonPath}: is empty");

        var merges = new List<(int, int, int)>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(vocabBpePath))
        {
            lineNumber++;
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            string[] parts = line.Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                throw new TokenizerFormatException($"{vocabBpePath}: line {lineNumber} is \"{line}\": expected two tokens separated by one space");
            if (!vocab.TryGetValue(parts[0], out int a) || !vocab.TryGetValue(parts[1], out int b) || !vocab.TryGetValue(parts[0] + parts[1], out int m))
                throw new TokenizerFormatException($"{vocabBpePath}: line {lineNumber} (\"{line}\") uses a token missing from {Path.GetFileName(encoderJsonPath)}");
            merges.Add((a, b, m));
        }
        if (merges.Count == 0) throw new TokenizerFormatException($"{vocabBpePath}: holds no merges");

        var added = new List<AddedToken>();
        int? eot = null;
        if (vocab.TryGetValue(EndOfText, out int eotId))
        {
            added.Add(new AddedToken(eotId, EndOfText, Special: true));
            eot = eotId;
        }
        var model = new BpeModel(vocab, merges, unkId: -1, ignoreMerges: false, ByteLevelBpeTokenizer.DefaultCacheCapacity);
        var pre = new PreTokenizer([new ByteLevelStep(addPrefixSpace: false, useRegex: true)]);
        return new ByteLevelBpeTokenizer(model, pre, TextNormalization.None, added, [], [], eot, eot, null);
    }
}
