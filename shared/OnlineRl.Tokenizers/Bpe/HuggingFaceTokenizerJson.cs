using System.Text.Json;

namespace OnlineRl.Tokenizers;

/// <summary>
/// Reads a Hugging Face tokenizer.json holding a byte-level BPE. Supported: model BPE (vocab; merges as
/// "a b" strings or [a, b] arrays; unk_token, ignore_merges), normalizer null/NFC/Sequence, pre_tokenizer
/// ByteLevel/Split/Digits/Sequence with ByteLevel last, decoder null/ByteLevel, post_processor
/// null/ByteLevel/TemplateProcessing, added_tokens. Anything else is an error naming the field and type.
/// </summary>
internal static class HuggingFaceTokenizerJson
{
    public static ByteLevelBpeTokenizer Load(string path, string? configPath)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer.json not found: {path}", path);
        var config = configPath is null ? null : TokenizerConfig.Load(configPath);
        return Parse(File.ReadAllText(path), path, config);
    }

    /// <summary>Whether the tokenizer.json at <paramref name="path"/> was converted from a SentencePiece model
    /// (Llama 2, Mistral: a byte-fallback BPE; or a Unigram model), so that the checkpoint's
    /// tokenizer.model is what to load. False for anything unreadable (the byte-level loader then reports it).</summary>
    public static bool IsSentencePieceConversion(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { MaxDepth = 256 });
            var root = doc.RootElement;
            if (JsonFields.Optional(root, "model") is not { ValueKind: JsonValueKind.Object } model) return false;
            bool bpe = JsonFields.Optional(model, "type") is not { } type || type.ValueKind == JsonValueKind.String && type.GetString() == "BPE";
            bool byteFallback = JsonFields.Optional(model, "byte_fallback") is { ValueKind: JsonValueKind.True };
            return !bpe || byteFallback;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public static ByteLevelBpeTokenizer Parse(string json, string source, TokenizerConfig? config)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{source}: not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            var f = new JsonFields(source);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{source}: the top level must be a JSON object");

            var model = f.Object(root, "model", "model");
            string modelType = JsonFields.Optional(model, "type") is { } mt ? f.AsString(mt, "model.type") : "BPE";
            if (modelType != "BPE")
                throw f.Error("model.type", $"is '{modelType}': only byte-level BPE models are supported here (SentencePiece checkpoints: load their tokenizer.model)");
            if (JsonFields.Optional(model, "dropout") is { } dropout && !(dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() == 0))
                throw f.Error("model.dropout", "is set: BPE dropout is not supported");
            foreach (var name in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
                if (f.OptionalString(model, name, "model." + name) is { Length: > 0 } v)
                    throw f.Error("model." + name, $"is '{v}': not supported for byte-level BPE");
            if (f.OptionalBool(model, "byte_fallback", "model.byte_fallback", false))
                throw f.Error("model.byte_fallback", "is true: a SentencePiece-style BPE (Llama 2, Mistral); put the checkpoint's tokenizer.model beside it");
            bool ignoreMerges = f.OptionalBool(model, "ignore_merges", "model.ignore_merges", false);

            var vocab = ReadVocab(f, f.Object(model, "vocab", "model.vocab"));
            var merges = ReadMerges(f, f.Array(model, "merges", "model.merges"), vocab);
            string? unk = f.OptionalString(model, "unk_token", "model.unk_token");
            if (unk is not null && !vocab.ContainsKey(unk)) throw f.Error("model.unk_token", $"'{unk}' is not in model.vocab");

            var added = ReadAddedTokens(f, root);
            var normalization = ReadNormalizer(f, JsonFields.Optional(root, "normalizer"), "normalizer");
            var steps = new List<PreTokenizerStep>();
            bool byteLevel = ReadPreTokenizer(f, JsonFields.Optional(root, "pre_tokenizer"), "pre_tokenizer", steps);
            if (!byteLevel)
                throw f.Error("pre_tokenizer", "has no ByteLevel pre-tokenizer: only byte-level BPE tokenizers are supported");
            CheckDecoder(f, JsonFields.Optional(root, "decoder"), "decoder");
            var (prefix, suffix) = ReadPostProcessor(f, JsonFields.Optional(root, "post_processor"), "post_processor", vocab, added);

            int? TokenToId(string content) =>
                added.FirstOrDefault(t => t.Content == content)?.Id ?? (vocab.TryGetValue(content, out int id) ? id : null);
            var (bos, eos, pad) = config?.SpecialIds(TokenToId) ?? (null, null, null);
            return new ByteLevelBpeTokenizer(vocab, merges, unk, ignoreMerges, new PreTokenizer(steps), normalization, added,
                prefix, suffix, bos, eos, pad);
        }
    }

    private static Dictionary<string, int> ReadVocab(JsonFields f, JsonElement vocabJson)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var byId = new Dictionary<int, string>();
        foreach (var p in vocabJson.EnumerateObject())
        {
            string path = $"model.vocab[\"{p.Name}\"]";
            int id = f.AsId(p.Value, path);
            if (byId.TryGetValue(id, out var other)) throw f.Error(path, $"reuses id {id} (already '{other}')");
            byId[id] = p.Name;
            vocab[p.Name] = id;
        }
        if (vocab.Count == 0) throw f.Error("model.vocab", "is empty");
        return vocab;
    }

    private static List<(string, string)> ReadMerges(JsonFields f, JsonElement mergesJson, Dictionary<string, int> vocab)
    {
        var merges = new List<(string, string)>(mergesJson.GetArrayLength());
        int i = 0;
        foreach (var m in mergesJson.EnumerateArray())
        {
            string path = $"model.merges[{i}]";
            string a, b;
            if (m.ValueKind == JsonValueKind.String)
            {
                string s = m.GetString()!;
                int space = s.IndexOf(' ');
                if (space <= 0 || space == s.Length - 1 || s.IndexOf(' ', space + 1) >= 0)
                    throw f.Error(path, $"is \"{s}\": a merge string must be two tokens separated by one space");
                a = s[..space];
                b = s[(space + 1)..];
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            {
                a = m[0].GetString()!;
                b = m[1].GetString()!;
            }
            else
            {
                throw f.Error(path, $"must be a string \"a b\" or an array [\"a\", \"b\"], found {m.GetRawText()}");
            }
            if (!vocab.ContainsKey(a)) throw f.Error(path, $"uses '{a}', which is not in model.vocab");
            if (!vocab.ContainsKey(b)) throw f.Error(path, $"uses '{b}', which is not in model.vocab");
            if (!vocab.ContainsKey(a + b)) throw f.Error(path, $"merges into '{a + b}', which is not in model.vocab");
            if (a.Contains(' ') || b.Contains(' ')) throw f.Error(path, "holds a token with a space, which byte-level BPE does not produce");
            merges.Add((a, b));
            i++;
        }
        return merges;
    }

    private static List<AddedToken> ReadAddedTokens(JsonFields f, JsonElement root)
    {
        var list = new List<AddedToken>();
        if (JsonFields.Optional(root, "added_tokens") is not { } arr) return list;
        if (arr.ValueKind != JsonValueKind.Array) throw f.Error("added_tokens", $"must be an array, found {JsonFields.Describe(arr.ValueKind)}");
        int i = 0;
        foreach (var t in arr.EnumerateArray())
        {
            string path = $"added_tokens[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) throw f.Error(path, $"must be an object, found {JsonFields.Describe(t.ValueKind)}");
            list.Add(f.AddedToken(t, f.Id(t, "id", path + ".id"), path));
        }
        return list;
    }

    private static TextNormalization ReadNormalizer(JsonFields f, JsonElement? json, string path)
    {
        if (json is not { } n) return TextNormalization.None;
        string type = f.String(n, "type", path + ".type");
        switch (type)
        {
            case "NFC":
                return TextNormalization.Nfc;
            case "Sequence":
            {
                var result = TextNormalization.None;
                int i = 0;
                foreach (var item in f.Array(n, "normalizers", path + ".normalizers").EnumerateArray())
                {
                    var r = ReadNormalizer(f, item.ValueKind == JsonValueKind.Null ? null : item, $"{path}.normalizers[{i++}]");
                    if (r != TextNormalization.None) result = r;
                }
                return result;
            }
            default:
                throw f.Error(path + ".type", $"is '{type}': unsupported normalizer (supported: NFC, Sequence, null)");
        }
    }

    // Returns whether a ByteLevel step was seen (it must be the last step).
    private static bool ReadPreTokenizer(JsonFields f, JsonElement? json, string path, List<PreTokenizerStep> steps)
    {
        if (json is not { } p) return false;
        string type = f.String(p, "type", path + ".type");
        if (steps.OfType<ByteLevelStep>().Any())
            throw f.Error(path + ".type", $"is '{type}' after a ByteLevel pre-tokenizer: ByteLevel must come last");
        switch (type)
        {
            case "ByteLevel":
                _ = f.OptionalBool(p, "trim_offsets", path + ".trim_offsets", true); // offsets only: checked, unused
                steps.Add(new ByteLevelStep(
                    f.OptionalBool(p, "add_prefix_space", path + ".add_prefix_space", true),
                    f.OptionalBool(p, "use_regex", path + ".use_regex", true)));
                return true;
            case "Split":
            {
                var pattern = f.Object(p, "pattern", path + ".pattern");
                SplitRegex regex;
                if (JsonFields.Optional(pattern, "Regex") is { } r)
                {
                    string rx = f.AsString(r, path + ".pattern.Regex");
                    try { regex = new SplitRegex(rx); }
                    catch (ArgumentException e) { throw f.Error(path + ".pattern.Regex", $"cannot be compiled: {e.Message}"); }
                }
                else if (JsonFields.Optional(pattern, "String") is { } s)
                {
                    string literal = f.AsString(s, path + ".pattern.String");
                    if (literal.Length == 0) throw f.Error(path + ".pattern.String", "is empty");
                    regex = new SplitRegex(System.Text.RegularExpressions.Regex.Escape(literal));
                }
                else
                {
                    throw f.Error(path + ".pattern", "must hold \"Regex\" or \"String\"");
                }
                string behaviorText = f.String(p, "behavior", path + ".behavior");
                if (!Enum.TryParse<SplitBehavior>(behaviorText, ignoreCase: false, out var behavior) || !Enum.IsDefined(behavior))
                    throw f.Error(path + ".behavior", $"is '{behaviorText}': expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
                steps.Add(new SplitStep(regex, behavior, f.OptionalBool(p, "invert", path + ".invert", false)));
                return false;
            }
            case "Digits":
            {
                bool individual = f.OptionalBool(p, "individual_digits", path + ".individual_digits", false);
                steps.Add(new SplitStep(new SplitRegex(individual ? @"\p{N}" : @"\p{N}+"), SplitBehavior.Isolated, false));
                return false;
            }
            case "Sequence":
            {
                bool byteLevel = false;
                int i = 0;
                foreach (var item in f.Array(p, "pretokenizers", path + ".pretokenizers").EnumerateArray())
                {
                    string itemPath = $"{path}.pretokenizers[{i++}]";
                    if (item.ValueKind != JsonValueKind.Object) throw f.Error(itemPath, $"must be an object, found {JsonFields.Describe(item.ValueKind)}");
                    byteLevel |= ReadPreTokenizer(f, item, itemPath, steps);
                }
                return byteLevel;
            }
            default:
                throw f.Error(path + ".type", $"is '{type}': unsupported pre-tokenizer (supported: ByteLevel, Split, Digits, Sequence)");
        }
    }

    private static void CheckDecoder(JsonFields f, JsonElement? json, string path)
    {
        if (json is not { } d) return;
        string type = f.String(d, "type", path + ".type");
        if (type != "ByteLevel")
            throw f.Error(path + ".type", $"is '{type}': unsupported decoder (supported: ByteLevel, null)");
    }

    private static (int[] Prefix, int[] Suffix) ReadPostProcessor(JsonFields f, JsonElement? json, string path,
        Dictionary<string, int> vocab, List<AddedToken> added)
    {
        if (json is not { } p) return ([], []);
        string type = f.String(p, "type", path + ".type");
        switch (type)
        {
            case "ByteLevel":
                return ([], []);
            case "TemplateProcessing":
            {
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSequence = false;
                int i = 0;
                foreach (var item in f.Array(p, "single", path + ".single").EnumerateArray())
                {
                    string itemPath = $"{path}.single[{i++}]";
                    if (JsonFields.Optional(item, "Sequence") is not null)
                    {
                        if (seenSequence) throw f.Error(itemPath, "is a second Sequence in the single-sequence template");
                        seenSequence = true;
                    }
                    else if (JsonFields.Optional(item, "SpecialToken") is { } st)
                    {
                        string name = f.String(st, "id", itemPath + ".SpecialToken.id");
                        int id = ResolveTemplateToken(f, p, name, path, itemPath, vocab, added);
                        (seenSequence ? suffix : prefix).Add(id);
                    }
                    else
                    {
                        throw f.Error(itemPath, "must hold \"Sequence\" or \"SpecialToken\"");
                    }
                }
                return (prefix.ToArray(), suffix.ToArray());
            }
            default:
                throw f.Error(path + ".type", $"is '{type}': unsupported post-processor (supported: ByteLevel, TemplateProcessing, null)");
        }
    }

    private static int ResolveTemplateToken(JsonFields f, JsonElement processor, string name, string path, string itemPath,
        Dictionary<string, int> vocab, List<AddedToken> added)
    {
        if (JsonFields.Optional(processor, "special_tokens") is { } specials && JsonFields.Optional(specials, name) is { } entry
            && JsonFields.Optional(entry, "ids") is { ValueKind: JsonValueKind.Array } ids && ids.GetArrayLength() == 1)
            return f.AsId(ids[0], $"{path}.special_tokens[\"{name}\"].ids[0]");
        foreach (var t in added) if (t.Content == name) return t.Id;
        if (vocab.TryGetValue(name, out int id)) return id;
        throw f.Error(itemPath + ".SpecialToken.id", $"names '{name}', which is not a known token");
    }
}
