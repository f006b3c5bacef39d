using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>Small hand-made tokenizer.json documents for unit tests (no peers needed).</summary>
internal static class ToyTokenizers
{
    /// <summary>A byte-level BPE: the 256 byte characters (ids 0-255 in byte order), then the merges'
    /// results, then the added tokens "&lt;|end|&gt;" (special) and "&lt;x&gt;" (not special).</summary>
    public static JsonObject Json(string[]? merges = null)
    {
        merges ??= ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or"];
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteLevel.CharOf((byte)b).ToString()] = b;
        int next = 256;
        foreach (string m in merges)
        {
            string merged = m.Replace(" ", "");
            if (!vocab.ContainsKey(merged)) vocab[merged] = next++;
        }
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = next, ["content"] = "<|end|>", ["special"] = true, ["normalized"] = false },
                new JsonObject { ["id"] = next + 1, ["content"] = "<x>", ["special"] = false, ["normalized"] = false }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)JsonValue.Create(m)!).ToArray()),
            },
        };
    }

    public static ByteLevelBpeTokenizer Parse(JsonObject json) => ByteLevelBpeTokenizer.ParseTokenizerJson(json.ToJsonString());

    public static ByteLevelBpeTokenizer Default => Parse(Json());
}
