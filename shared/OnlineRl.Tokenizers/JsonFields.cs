using System.Text.Json;

namespace OnlineRl.Tokenizers;

/// <summary>Typed access to JSON fields that reports problems as "file: field 'a.b[3]' ...".</summary>
internal sealed class JsonFields(string source)
{
    public string Source { get; } = source;

    public TokenizerFormatException Error(string path, string problem) => new($"{Source}: field '{path}' {problem}");

    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "missing",
    };

    public JsonElement Object(JsonElement parent, string name, string path)
    {
        var e = Required(parent, name, path);
        if (e.ValueKind != JsonValueKind.Object) throw Error(path, $"must be an object, found {Describe(e.ValueKind)}");
        return e;
    }

    public JsonElement Array(JsonElement parent, string name, string path)
    {
        var e = Required(parent, name, path);
        if (e.ValueKind != JsonValueKind.Array) throw Error(path, $"must be an array, found {Describe(e.ValueKind)}");
        return e;
    }

    public JsonElement Required(JsonElement parent, string name, string path)
    {
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out var e))
            throw Error(path, "is missing");
        return e;
    }

    /// <summary>The property, or null when it is absent or JSON null.</summary>
    public static JsonElement? Optional(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

    public string String(JsonElement parent, string name, string path)
    {
        var e = Required(parent, name, path);
        return AsString(e, path);
    }

    public string AsString(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.String) throw Error(path, $"must be a string, found {Describe(e.ValueKind)}");
        return e.GetString()!;
    }

    public string? OptionalString(JsonElement parent, string name, string path) =>
        Optional(parent, name) is { } e ? AsString(e, path) : null;

    public bool OptionalBool(JsonElement parent, string name, string path, bool defaultValue)
    {
        if (Optional(parent, name) is not { } e) return defaultValue;
        if (e.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw Error(path, $"must be true or false, found {Describe(e.ValueKind)}");
        return e.GetBoolean();
    }

    public int AsId(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int v) || v < 0)
            throw Error(path, $"must be a non-negative integer id, found {(e.ValueKind == JsonValueKind.Number ? e.GetRawText() : Describe(e.ValueKind))}");
        return v;
    }

    public int Id(JsonElement parent, string name, string path) => AsId(Required(parent, name, path), path);

    /// <summary>An added token described as in tokenizer.json's <c>added_tokens</c> (the id given apart, as in
    /// tokenizer_config.json's <c>added_tokens_decoder</c>). <c>normalized</c> defaults to <c>!special</c>.</summary>
    public AddedToken AddedToken(JsonElement t, int id, string path)
    {
        if (t.ValueKind != JsonValueKind.Object) throw Error(path, $"must be an object, found {Describe(t.ValueKind)}");
        string content = String(t, "content", path + ".content");
        if (content.Length == 0) throw Error(path + ".content", "is empty");
        bool special = OptionalBool(t, "special", path + ".special", false);
        return new AddedToken(id, content, special,
            OptionalBool(t, "lstrip", path + ".lstrip", false),
            OptionalBool(t, "rstrip", path + ".rstrip", false),
            OptionalBool(t, "single_word", path + ".single_word", false),
            OptionalBool(t, "normalized", path + ".normalized", !special));
    }
}
