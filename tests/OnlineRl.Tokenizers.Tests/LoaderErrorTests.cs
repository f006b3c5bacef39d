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

    [Fact]
    public void Vocab_and_merges_files_need_each_other_and_a_known_tokenizer_class()
    {
        File.WriteAllText(Path.Combine(_dir, "vocab.json"), """{"a": 0, "b": 1, "ab": 2}""");
        Assert.Contains("has vocab.json but no merges.txt", Assert.Throws<FileNotFoundException>(() => TokenizerLoader.FromDirectory(_dir)).Message);
        File.WriteAllText(Path.Combine(_dir, "merges.txt"), "#version: 0.2\na b\n");
        Assert.Equal([2], TokenizerLoader.FromDirectory(_dir).Encode("ab"));
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"tokenizer_class": "LlamaTokenizer"}""");
        var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("tokenizer_config.json: field 'tokenizer_class' is 'LlamaTokenizer'", e.Message);
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"added_tokens_decoder": {"x": {"content": "<s>"}}}""");
        e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.Contains("field 'added_tokens_decoder[\"x\"]'", e.Message);
        File.Delete(Path.Combine(_dir, "vocab.json"));
        File.Delete(Path.Combine(_dir, "tokenizer_config.json"));
        Assert.Contains("has merges.txt but no vocab.json", Assert.Throws<FileNotFoundException>(() => TokenizerLoader.FromDirectory(_dir)).Message);
    }

    // A tokenizer.model written by hand (protocol buffer wire format): pieces <unk> <s> </s> ▁ a ▁a, BPE.
    private static byte[] SentencePieceModel(int modelType = 2, string normalizer = "identity", byte[]? charsmap = null)
    {
        static byte[] Varint(long v)
        {
            var bytes = new List<byte>();
            for (ulong u = (ulong)v; ; u >>= 7)
            {
                if (u < 0x80) { bytes.Add((byte)u); return bytes.ToArray(); }
                bytes.Add((byte)(u | 0x80));
            }
        }
        static byte[] Bytes(int field, byte[] payload) => [.. Varint(field << 3 | 2), .. Varint(payload.Length), .. payload];
        static byte[] Int(int field, long value) => [.. Varint(field << 3), .. Varint(value)];
        static byte[] Piece(string text, float score, int type) =>
            Bytes(1, [.. Bytes(1, System.Text.Encoding.UTF8.GetBytes(text)), 2 << 3 | 5, .. BitConverter.GetBytes(score), .. Int(3, type)]);
        return [.. Piece("<unk>", 0, 2), .. Piece("<s>", 0, 3), .. Piece("</s>", 0, 3), .. Piece("▁a", -1, 1), .. Piece("▁", -2, 1),
            .. Piece("a", -3, 1), .. Bytes(2, [.. Int(3, modelType), .. Int(43, -1)]),
            .. Bytes(3, [.. Bytes(1, System.Text.Encoding.UTF8.GetBytes(normalizer)), .. (charsmap is null ? [] : Bytes(2, charsmap))])];
    }

    [Fact]
    public void Sentence_piece_models_are_read_or_refused_with_the_field_named()
    {
        string path = Path.Combine(_dir, "tokenizer.model");
        File.WriteAllBytes(path, SentencePieceModel());
        var t = Assert.IsType<SentencePieceBpeTokenizer>(TokenizerLoader.FromDirectory(_dir));
        Assert.Equal([3, 3, 4, 0], t.Encode("a a b")); // ▁a ▁a ▁ <unk>
        Assert.Equal((1, 2, (int?)null), (t.BosId, t.EosId, t.PadId));
        Assert.Equal("a a <unk>", t.Decode([3, 3, 4, 0]));

        File.WriteAllBytes(path, SentencePieceModel(modelType: 1));
        Assert.Contains("field 'trainer_spec.model_type' is UNIGRAM", Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir)).Message);
        File.WriteAllBytes(path, SentencePieceModel(normalizer: "nmt_nfkc", charsmap: [1, 2, 3]));
        Assert.Contains("field 'normalizer_spec.name' is 'nmt_nfkc'", Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir)).Message);
        File.WriteAllBytes(path, SentencePieceModel()[..20]);
        var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir));
        Assert.StartsWith(path + ": field 'pieces[1]", e.Message);
        File.WriteAllText(path, "not a model");
        Assert.Contains(path, Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromDirectory(_dir)).Message);
    }
}
