namespace OnlineRl.Tokenizers.Tests;

public sealed class SimpleTokenizerTests
{
    [Fact]
    public void Char_tokenizer_round_trips_and_numbers_specials_first()
    {
        var t = new CharTokenizer("0123456789+-=* \n😀");
        Assert.Equal(3 + 17, t.VocabSize);
        Assert.Equal((0, 1, 2), (t.PadId, t.BosId, t.EosId));
        int[] ids = t.Encode("12+3=15 😀\n");
        Assert.Equal(10, ids.Length); // the emoji is one token
        Assert.Equal(4, ids[0]);      // '1' is the second alphabet character
        Assert.Equal("12+3=15 😀\n", t.Decode(ids));
        Assert.Equal("<bos>12<eos><pad>", t.Decode([1, 4, 5, 2, 0]));
        Assert.Equal("12", t.Decode([1, 4, 5, 2, 0], skipSpecialTokens: true));
        Assert.Equal(3, t.TokenToId("0"));
        Assert.Equal(2, t.TokenToId("<eos>"));
        Assert.Equal(19, t.TokenToId("😀"));
        Assert.Null(t.TokenToId("x"));
        Assert.Equal("😀", t.IdToToken(19));
        Assert.Null(t.IdToToken(20));
        Assert.True(t.IsSpecial(0));
        Assert.False(t.IsSpecial(3));
    }

    [Fact]
    public void Char_tokenizer_errors_are_clear()
    {
        var t = new CharTokenizer("ab");
        var e = Assert.Throws<ArgumentException>(() => t.Encode("abc"));
        Assert.Contains("'c'", e.Message);
        Assert.Contains("offset 2", e.Message);
        Assert.Throws<ArgumentException>(() => new CharTokenizer("aba"));
        Assert.Throws<ArgumentException>(() => new CharTokenizer(""));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([5]));
        var withUnk = new CharTokenizer("ab?", unknownCharacter: '?');
        Assert.Equal("ab??", withUnk.Decode(withUnk.Encode("abcd")));
    }

    [Fact]
    public void Byte_tokenizer_round_trips_and_replaces_invalid_utf8()
    {
        var t = new ByteTokenizer();
        Assert.Equal(259, t.VocabSize);
        Assert.Equal((256, 257, 258), (t.PadId, t.BosId, t.EosId));
        foreach (string s in Corpus.Sample) Assert.Equal(s, t.Decode(t.Encode(s)));
        Assert.Equal([0xE4, 0xBD, 0xA0], t.Encode("你"));
        Assert.Equal("<bos>\uFFFDa<eos>", t.Decode([257, 0xE4, 0xBD, 'a', 258]));
        Assert.Equal("\uFFFDa", t.Decode([257, 0xE4, 0xBD, 'a', 258], skipSpecialTokens: true));
        Assert.Equal(0x41, t.TokenToId("<0x41>"));
        Assert.Null(t.TokenToId("<0x4g>"));
        Assert.Equal(258, t.TokenToId("<eos>"));
        Assert.Equal("<0x0A>", t.IdToToken(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([259]));
    }
}
