using System.Text.Json.Nodes;

namespace OnlineRl.Tokenizers.Tests;

public sealed class LoaderErrorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "onlinerl-tok-" + Guid.NewGuid().ToString("N"));

    public LoaderErrorTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string ParseError(JsonObject json)
    {
        var e = Assert.Throws<TokenizerFormatException>(() => ByteLevelBpeTokenizer.ParseTokenizerJson(json.ToJsonString(), "my/tokenizer.json"));
        Assert.StartsWith("my/tokenizer.json: ", e.Message);
        return e.Message;
    }

    [Fact]
    public void Missing_directory_and_files_are_named()
    {
        var e1 = Assert.Throws<DirectoryNotFoundException>(() => TokenizerLoader.FromDirectory(Path.Combine(_dir, "nope")));
        Assert.Contains("nope", e1.Message);
        var e2 = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("tokenizer.json", e2.Message);
        Assert.Contains("encoder.json + vocab.bpe", e2.Message);
        File.WriteAllText(Path.Combine(_dir, "encoder.json"), "{}");
        var e3 = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("no vocab.bpe", e3.Message);
        File.Delete(Path.Combine(_dir, "encoder.json"));
        File.WriteAllText(Path.Combine(_dir, "vocab.bpe"), "#version: 0.2\n");
        var e4 = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("no encoder.json", e4.Message);
    }

    [Fact]
    public void Bad_gpt2_files_are_named()
    {
        File.WriteAllText(Path.Combine(_dir, "encoder.json"), """{"a": 0, "b": 1, "ab": 2}""");
        File.WriteAllText(Path.Combine(_dir, "vocab.bpe"), "#version: 0.2\na b\na c\n");
        var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("vocab.bpe: line 3", e.Message);
        File.WriteAllText(Path.Combine(_dir, "encoder.json"), """{"a": 0, "b": "x"}""");
        e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("encoder.json: field '[\"b\"]'", e.Message);
    }

    [Fact]
    public void Invalid_json_is_reported_with_the_file()
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), "{ \"model\": ");
        var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("tokenizer.json: not valid JSON", e.Message);
    }

    [Fact]
    public void Malformed_fields_are_named()
    {
        var json = ToyTokenizers.Json();
        json.Remove("model");
        Assert.Contains("field 'model' is missing", ParseError(json));

        json = ToyTokenizers.Json();
        ((JsonArray)json["model"]!["merges"]!)[1] = "l l l";
        Assert.Contains("field 'model.merges[1]'", ParseError(json));

        json = ToyTokenizers.Json();
        ((JsonArray)json["model"]!["merges"]!)[2] = new JsonArray("he", 5);
        Assert.Contains("field 'model.merges[2]'", ParseError(json));

        json = ToyTokenizers.Json();
        ((JsonArray)json["model"]!["merges"]!).Add("zz q");
        string m = ParseError(json);
        Assert.Contains("field 'model.merges[7]'", m);
        Assert.Contains("'zz'", m);

        json = ToyTokenizers.Json();
        json["model"]!["vocab"]!["he"] = "x";
        Assert.Contains("field 'model.vocab[\"he\"]'", ParseError(json));

        json = ToyTokenizers.Json();
        json["model"]!["vocab"] = new JsonArray();
        Assert.Contains("field 'model.vocab' must be an object", ParseError(json));

        json = ToyTokenizers.Json();
        ((JsonObject)json["added_tokens"]![0]!).Remove("id");
        Assert.Contains("field 'added_tokens[0].id' is missing", ParseError(json));

        json = ToyTokenizers.Json();
        json["model"]!["unk_token"] = "<unk>";
        Assert.Contains("field 'model.unk_token'", ParseError(json));
    }

    [Fact]
    public void Unsupported_types_are_errors_naming_the_type()
    {
        var json = ToyTokenizers.Json();
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" };
        string m = ParseError(json);
        Assert.Contains("field 'pre_tokenizer.type'", m);
        Assert.Contains("'Whitespace'", m);

        json = ToyTokenizers.Json();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"\s+" }, ["behavior"] = "Isolated" },
                new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁" },
                new JsonObject { ["type"] = "ByteLevel" }),
        };
        m = ParseError(json);
        Assert.Contains("field 'pre_tokenizer.pretokenizers[1].type'", m);
        Assert.Contains("'Metaspace'", m);

        json = ToyTokenizers.Json();
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"\s+" }, ["behavior"] = "Isolated" };
        Assert.Contains("no ByteLevel", ParseError(json));

        json = ToyTokenizers.Json();
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"(\p{L}+" }, ["behavior"] = "Isolated" };
        Assert.Contains("field 'pre_tokenizer.pattern.Regex' cannot be compiled", ParseError(json));

        json = ToyTokenizers.Json();
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "x" }, ["behavior"] = "Sideways" };
        Assert.Contains("field 'pre_tokenizer.behavior'", ParseError(json));

        json = ToyTokenizers.Json();
        json["normalizer"] = new JsonObject { ["type"] = "NFKC" };
        m = ParseError(json);
        Assert.Contains("field 'normalizer.type'", m);
        Assert.Contains("'NFKC'", m);

        json = ToyTokenizers.Json();
        json["model"]!["type"] = "Unigram";
        Assert.Contains("field 'model.type' is 'Unigram'", ParseError(json));

        json = ToyTokenizers.Json();
        json["decoder"] = new JsonObject { ["type"] = "WordPiece" };
        Assert.Contains("field 'decoder.type' is 'WordPiece'", ParseError(json));

        json = ToyTokenizers.Json();
        json["post_processor"] = new JsonObject { ["type"] = "BertProcessing" };
        Assert.Contains("field 'post_processor.type' is 'BertProcessing'", ParseError(json));

        json = ToyTokenizers.Json();
        json["model"]!["byte_fallback"] = true;
        Assert.Contains("field 'model.byte_fallback'", ParseError(json));
    }

    [Fact]
    public void Tokenizer_config_special_tokens_are_resolved_or_reported()
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), ToyTokenizers.Json().ToJsonString());
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"),
            """{"bos_token": null, "eos_token": {"content": "<|end|>", "special": true}, "pad_token": "<|end|>"}""");
        var t = TokenizerLoader.FromDirectory(_dir);
        Assert.Null(t.BosId);
        Assert.Equal(t.TokenToId("<|end|>"), t.EosId);
        Assert.Equal(t.TokenToId("<|end|>"), t.PadId);

        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"eos_token": "</s>"}""");
        var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("tokenizer_config.json: field 'eos_token'", e.Message);
        Assert.Contains("'</s>'", e.Message);
    }
}
