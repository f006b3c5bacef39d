using Xunit.Abstractions;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>
/// SentencePiece BPE (tokenizer.model) against Google's sentencepiece, on models sentencepiece trains on GSM8K:
/// one with Llama 2's settings (byte fallback, digits split, identity normalization, whitespace kept), one
/// without byte fallback, with whitespace removal and the user-defined pieces "&lt;&lt;" and "&gt;&gt;" (GSM8K's
/// calculator marks).
/// </summary>
public sealed class SentencePieceParityTests(ITestOutputHelper output)
{
    internal static readonly Lazy<string> LlamaStyleModel = new(() => SentencePiecePeer.Train("llama-style", byteFallback: true, ""));
    private static readonly Lazy<string> UnknownModel = new(() => SentencePiecePeer.Train("no-fallback", byteFallback: false, "<<,>>"));

    private static string[] Texts => [.. Corpus.Gsm8k, .. Corpus.Sample];

    [Fact]
    public void Ids_match_sentencepiece_on_a_llama_style_model()
    {
        string model = LlamaStyleModel.Value;
        var tokenizer = SentencePieceBpeTokenizer.FromModelFile(model);
        var texts = Texts;
        ParityAssert.SameIds(texts, SentencePiecePeer.Encode(model, texts), texts.Select(tokenizer.Encode).ToArray(), tokenizer,
            "sentencepiece (llama-style model)", output);
    }

    [Fact]
    public void Ids_match_sentencepiece_without_byte_fallback_and_with_user_defined_pieces()
    {
        string model = UnknownModel.Value;
        var tokenizer = SentencePieceBpeTokenizer.FromModelFile(model);
        // A part of GSM8K keeps the test short; the Llama-style model is compared on all of it.
        string[] texts = [.. Corpus.Gsm8k.Take(4000), .. Corpus.Sample];
        var actual = texts.Select(tokenizer.Encode).ToArray();
        ParityAssert.SameIds(texts, SentencePiecePeer.Encode(model, texts), actual, tokenizer, "sentencepiece (no byte fallback)", output);
        // The corpus exercises both: unknown characters (the sample's scripts and emoji) and the user-defined pieces.
        Assert.Contains(actual, ids => ids.Contains(0));
        Assert.Contains(actual, ids => ids.Contains(tokenizer.TokenToId("<<")!.Value));
    }

    /// <summary>Decoding whole texts, single tokens and every prefix of the sample's id sequences (which cuts
    /// byte-fallback characters) must give sentencepiece's text.</summary>
    [Fact]
    public void Decode_matches_sentencepiece_including_cut_characters()
    {
        string model = LlamaStyleModel.Value;
        var tokenizer = SentencePieceBpeTokenizer.FromModelFile(model);
        var idLists = Texts.Select(tokenizer.Encode).Concat(ParityAssert.DecodeCases(tokenizer, Corpus.Sample)).ToList();
        ParityAssert.SameDecodes(idLists, SentencePiecePeer.Decode(model, idLists), tokenizer, output);
    }

    [Fact]
    public void Metadata_special_tokens_and_loading_from_a_directory()
    {
        string model = LlamaStyleModel.Value;
        var t = SentencePieceBpeTokenizer.FromModelFile(model);
        Assert.Equal(4000, t.VocabSize);
        Assert.Equal((1, 2, (int?)null), (t.BosId, t.EosId, t.PadId));
        Assert.Equal([0, 1, 2], t.AddedTokens.Select(a => a.Id));
        Assert.True(t.IsSpecial(1));
        Assert.Equal("<0x0A>", t.IdToToken(t.Encode("\n")[^1]));
        // Control pieces written in the text are special tokens (Hugging Face behaviour), subject to the policy.
        int[] ids = t.Encode("Hi</s>");
        Assert.Equal(2, ids[^1]);
        Assert.Equal("Hi</s>", t.Decode(ids));
        Assert.Equal("Hi", t.Decode(ids, skipSpecialTokens: true));
        Assert.DoesNotContain(2, t.Encode("Hi</s>", SpecialTokenPolicy.EncodeAsText));
        Assert.Throws<ArgumentException>(() => t.Encode("Hi</s>", SpecialTokenPolicy.Reject));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([4000]));

        // A checkpoint directory: tokenizer.model alone, and beside a SentencePiece-converted tokenizer.json.
        string dir = Path.Combine(Path.GetTempPath(), "onlinerl-spm-dir-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.Copy(model, Path.Combine(dir, "tokenizer.model"));
            Assert.IsType<SentencePieceBpeTokenizer>(TokenizerLoader.FromDirectory(dir));
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), """{"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}""");
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>"}""");
            var fromDir = Assert.IsType<SentencePieceBpeTokenizer>(TokenizerLoader.FromDirectory(dir));
            Assert.Equal(0, fromDir.PadId);
            Assert.Equal(t.Encode(Corpus.Gsm8k[0]), fromDir.Encode(Corpus.Gsm8k[0]));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
