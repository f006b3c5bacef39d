namespace OnlineRl.Tokenizers.Tests;

public sealed class SplitRegexTests
{
    // Qwen2/Qwen3's pattern (as in their tokenizer.json) and tiktoken's cl100k pattern, which uses
    // possessive quantifiers and a different contraction form.
    private const string QwenPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Cl100kPattern = @"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";
    private const string Cl100kPlain = @"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s+$|\s*[\r\n]|\s+(?!\S)|\s";

    private static string[] Pieces(string pattern, string text)
    {
        var matches = new List<(int Start, int Length)>();
        new SplitRegex(pattern).FindMatches(text, matches);
        return matches.Select(m => text.Substring(m.Start, m.Length)).ToArray();
    }

    [Theory]
    [InlineData(@"a++", "(?>a+)")]
    [InlineData(@"[^\r\n\p{L}\p{N}]?+\p{L}+", @"(?>[^\r\n\p{L}\p{N}]?)\p{L}+")]
    [InlineData(@"\p{N}{1,3}+x", @"(?>\p{N}{1,3})x")]
    [InlineData(@"(?:ab|c)*+", "(?>(?:ab|c)*)")]
    [InlineData(@"a+?b*", "a+?b*")]
    [InlineData(@"(?i:'s|'t)", "(?:'[sS]|'[tT])")]
    [InlineData(@"'(?i:[sdmt]|ll)", "'(?:[sSdDmMtT]|[lL][lL])")]
    [InlineData(@"\s+(?!\S)|\{x\}", @"\s+(?!\S)|\{x\}")]
    public void Translates_oniguruma_constructs(string pattern, string expected) =>
        Assert.Equal(expected, SplitRegex.Translate(pattern));

    [Fact]
    public void Bad_patterns_are_reported()
    {
        Assert.ThrowsAny<ArgumentException>(() => new SplitRegex("(abc"));
        Assert.ThrowsAny<ArgumentException>(() => new SplitRegex("abc)"));
        Assert.ThrowsAny<ArgumentException>(() => new SplitRegex(@"\p{NoSuchCategory}"));
    }

    [Fact]
    public void Contractions_are_case_insensitive_only_for_ascii()
    {
        Assert.Equal(["I", "'M", " fine"], Pieces(QwenPattern, "I'M fine"));
        Assert.Equal(["x", "'\u017f"], Pieces(QwenPattern, "x'\u017f")); // long s: not a contraction, "'ſ" is a letter run with prefix
    }

    [Fact]
    public void Whitespace_is_unicode_white_space()
    {
        // U+0085 (NEL) is White_Space (as in Oniguruma and Rust's regex, unlike JavaScript's \s): the two
        // spaces and NEL form one whitespace run. U+FEFF is not whitespace in either.
        Assert.Equal(["a", "  \u0085"], Pieces(QwenPattern, "a  \u0085"));
        Assert.Equal(["a", " \ufeff"], Pieces(QwenPattern, "a \ufeff"));
    }

    [Fact]
    public void Characters_outside_the_bmp_keep_their_category()
    {
        // Mathematical bold letters are letters, bold digits are digits, 𠮷 is a letter: one piece per
        // word / per digit, never a split inside a surrogate pair.
        Assert.Equal(["𝐇𝐞𝐥𝐥𝐨", " 𝟏", "𝟐", "𝟑"], Pieces(ByteLevelStep.Gpt2Pattern.Replace(@" ?\p{N}+", @" ?\p{N}"), "𝐇𝐞𝐥𝐥𝐨 𝟏𝟐𝟑"));
        Assert.Equal(["𠮷野家", " ", "𝟏", "𝟐"], Pieces(QwenPattern, "𠮷野家 𝟏𝟐"));
        Assert.Equal(["😀😀", " a"], Pieces(QwenPattern, "😀😀 a"));
    }

    [Fact]
    public void Possessive_cl100k_pattern_splits_like_its_plain_form_on_gsm8k_and_the_sample()
    {
        var possessive = new SplitRegex(Cl100kPattern);
        var plain = new SplitRegex(Cl100kPlain);
        var a = new List<(int, int)>();
        var b = new List<(int, int)>();
        foreach (string text in Corpus.Gsm8k.Take(2000).Concat(Corpus.Sample))
        {
            a.Clear();
            b.Clear();
            possessive.FindMatches(text, a);
            plain.FindMatches(text, b);
            Assert.Equal(b, a);
        }
    }
}
