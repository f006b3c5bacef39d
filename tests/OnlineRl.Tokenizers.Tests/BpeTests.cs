using System.Text.Json.Nodes;

namespace OnlineRl.Tokenizers.Tests;

public sealed class BpeTests
{
    [Fact]
    public void Toy_merges_apply_by_rank()
    {
        var t = ToyTokenizers.Default;
        int hello = t.TokenToId("hello")!.Value, world = t.TokenToId("Ġwor")!.Value;
        Assert.Equal([hello, world, 'l', 'd'], t.Encode("hello world"));
        Assert.Equal("hello world", t.Decode(t.Encode("hello world")));
    }

    [Fact]
    public void Added_tokens_are_matched_before_bpe_and_decode_as_their_text()
    {
        var t = ToyTokenizers.Default;
        int end = t.TokenToId("<|end|>")!.Value, x = t.TokenToId("<x>")!.Value;
        int[] ids = t.Encode("he<|end|><x>he");
        Assert.Equal([t.TokenToId("he")!.Value, end, x, t.TokenToId("he")!.Value], ids);
        Assert.Equal("he<|end|><x>he", t.Decode(ids));
        Assert.Equal("he<x>he", t.Decode(ids, skipSpecialTokens: true));
        Assert.True(t.IsSpecial(end));
        Assert.False(t.IsSpecial(x));
    }

    [Fact]
    public void Longest_added_token_wins_and_lstrip_rstrip_take_whitespace()
    {
        var json = ToyTokenizers.Json();
        var added = (JsonArray)json["added_tokens"]!;
        added.Add(new JsonObject { ["id"] = 300, ["content"] = "<x><x>", ["special"] = false, ["normalized"] = false });
        added.Add(new JsonObject { ["id"] = 301, ["content"] = "[M]", ["special"] = true, ["lstrip"] = true, ["rstrip"] = true, ["normalized"] = false });
        var t = ToyTokenizers.Parse(json);
        int x = t.TokenToId("<x>")!.Value;
        Assert.Equal([300, x], t.Encode("<x><x><x>"));
        Assert.Equal(['a', 301, 'b'], t.Encode("a  [M]\t b"));
        Assert.Equal(302, t.VocabSize);
    }

    [Fact]
    public void Ignore_merges_emits_whole_vocabulary_words()
    {
        // "hello" is in the vocabulary but unreachable through these merges (no "hell o").
        var json = ToyTokenizers.Json(["h e", "l l", "he ll", "hell o"]);
        ((JsonArray)json["model"]!["merges"]!).RemoveAt(3);
        var without = ToyTokenizers.Parse(json);
        Assert.Equal(2, without.Encode("hello").Length);
        json["model"]!["ignore_merges"] = true;
        var with = ToyTokenizers.Parse(json);
        Assert.Equal([with.TokenToId("hello")!.Value], with.Encode("hello"));
    }

    [Fact]
    public void Merges_in_array_form_equal_string_form()
    {
        var strings = ToyTokenizers.Json();
        var arrays = ToyTokenizers.Json();
        var merges = (JsonArray)arrays["model"]!["merges"]!;
        var pairs = merges.Select(m => m!.GetValue<string>().Split(' ')).ToList();
        merges.Clear();
        foreach (var p in pairs) merges.Add(new JsonArray(p[0], p[1]));
        string text = "hello world, hello there";
        Assert.Equal(ToyTokenizers.Parse(strings).Encode(text), ToyTokenizers.Parse(arrays).Encode(text));
    }

    [Theory]
    [InlineData("Removed", new[] { "the", "final", "countdown" })]
    [InlineData("Isolated", new[] { "the", "-", "final", "-", "-", "countdown" })]
    [InlineData("MergedWithPrevious", new[] { "the-", "final-", "-", "countdown" })]
    [InlineData("MergedWithNext", new[] { "the", "-final", "-", "-countdown" })]
    [InlineData("Contiguous", new[] { "the", "-", "final", "--", "countdown" })]
    public void Split_behaviors_cut_like_the_hugging_face_tokenizers(string behavior, string[] expected)
    {
        var json = ToyTokenizers.Json();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["String"] = "-" }, ["behavior"] = behavior, ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
        };
        var t = ToyTokenizers.Parse(json);
        var pieces = new List<ReadOnlyMemory<char>>();
        t.PreTokenizer.Run("the-final--countdown".AsMemory(), pieces);
        Assert.Equal(expected, pieces.Select(p => p.ToString()).ToArray());
    }

    [Fact]
    public void Byte_level_add_prefix_space_prepends_a_space()
    {
        var json = ToyTokenizers.Json();
        json["pre_tokenizer"]!["add_prefix_space"] = true;
        var t = ToyTokenizers.Parse(json);
        Assert.Equal(ToyTokenizers.Default.Encode(" world"), t.Encode("world"));
        Assert.Equal(ToyTokenizers.Default.Encode(" world"), t.Encode(" world"));
    }

    [Fact]
    public void Template_processing_adds_its_tokens_only_when_asked()
    {
        var json = ToyTokenizers.Json();
        json["post_processor"] = JsonNode.Parse("""
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|end|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [], "special_tokens": {}}
            """);
        var t = ToyTokenizers.Parse(json);
        int end = t.TokenToId("<|end|>")!.Value;
        Assert.Equal([end], t.TemplatePrefixIds);
        Assert.Equal(t.Encode("hello"), t.Encode("hello", SpecialTokenPolicy.Allow, addSpecialTokens: false));
        Assert.Equal([end, .. t.Encode("hello")], t.Encode("hello", SpecialTokenPolicy.Allow, addSpecialTokens: true));
    }

    [Fact]
    public void Decode_rejects_unknown_ids_and_replaces_cut_characters()
    {
        var t = ToyTokenizers.Default;
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([100_000]));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([-1]));
        // 😀 is F0 9F 98 80: without its last byte it decodes to one U+FFFD.
        int[] ids = t.Encode("😀");
        Assert.Equal(4, ids.Length);
        Assert.Equal("\uFFFD", t.Decode(ids[..3]));
        Assert.Equal("\uFFFDa", t.Decode([ids[0], 'a']));
    }
}
