using System.Text.Json;

namespace OnlineRl.Tokenizers;

/// <summary>
/// The fields of a Hugging Face tokenizer_config.json this library uses: the BOS/EOS/pad tokens, the
/// tokenizer class (which fixes the pre-tokenizer of vocab.json + merges.txt checkpoints) and the added
/// tokens (<c>added_tokens_decoder</c>).
/// </summary>
internal sealed class TokenizerConfig
{
    private readonly JsonFields _fields;
    private readonly string? _bos, _eos, _pad;

    private TokenizerConfig(JsonFields fields, string? bos, string? eos, string? pad, string? tokenizerClass, List<AddedToken> addedTokens)
    {
        _fields = fields;
        (_bos, _eos, _pad) = (bos, eos, pad);
        TokenizerClass = tokenizerClass;
        AddedTokens = addedTokens;
    }

    /// <summary><c>tokenizer_class</c>, or null when absent.</summary>
    public string? TokenizerClass { get; }

    /// <summary>The tokens of <c>added_tokens_decoder</c>, in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    public string Source => _fields.Source;

    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">The file is malformed; the message names the field.</exception>
    public static TokenizerConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer_config.json not found: {path}", path);
        return Parse(File.ReadAllText(path), path);
    }

    public static TokenizerConfig Parse(string json, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new TokenizerFormatException($"{source}: not valid JSON ({e.Message})", e); }
        using (doc)
        {
            var f = new JsonFields(source);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{source}: the top level must be a JSON object");
            string? Token(string field)
            {
                if (JsonFields.Optional(root, field) is not { } e) return null;
                return e.ValueKind == JsonValueKind.Object ? f.String(e, "content", field + ".content") : f.AsString(e, field);
            }
            var added = new List<AddedToken>();
            if (JsonFields.Optional(root, "added_tokens_decoder") is { } decoder)
            {
                if (decoder.ValueKind != JsonValueKind.Object)
                    throw f.Error("added_tokens_decoder", $"must be an object, found {JsonFields.Describe(decoder.ValueKind)}");
                foreach (var p in decoder.EnumerateObject())
                {
                    string path = $"added_tokens_decoder[\"{p.Name}\"]";
                    if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
                        throw f.Error(path, "is not keyed by a non-negative integer id");
                    added.Add(f.AddedToken(p.Value, id, path));
                }
            }
            return new TokenizerConfig(f, Token("bos_token"), Token("eos_token"), Token("pad_token"),
                f.OptionalString(root, "tokenizer_class", "tokenizer_class"), added);
        }
    }

    /// <summary>The ids of the BOS, EOS and pad tokens it names (null where it names none).</summary>
    /// <exception cref="TokenizerFormatException">A named token is not a token of the tokenizer.</exception>
    public (int? Bos, int? Eos, int? Pad) SpecialIds(Func<string, int?> tokenToId)
    {
        int? Resolve(string? content, string field) => content is null ? null
            : tokenToId(content) ?? throw _fields.Error(field, $"names '{content}', which is not a token of the tokenizer");
        return (Resolve(_bos, "bos_token"), Resolve(_eos, "eos_token"), Resolve(_pad, "pad_token"));
    }
}
