using System.Text.Json;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>The texts the parity tests compare on.</summary>
internal static class Corpus
{
    private static readonly Lazy<string[]> Gsm8kTexts = new(LoadGsm8k);

    /// <summary>Every GSM8K question and answer, train then test (17,584 texts).</summary>
    public static string[] Gsm8k => Gsm8kTexts.Value;

    private static string[] LoadGsm8k()
    {
        var texts = new List<string>();
        foreach (var (name, sha) in new[] { ("train.jsonl", TestPaths.Gsm8kTrainSha256), ("test.jsonl", TestPaths.Gsm8kTestSha256) })
        {
            string path = TestPaths.Verified(Path.Combine(TestPaths.Gsm8kDir, name), sha);
            foreach (string line in File.ReadLines(path))
            {
                if (line.Length == 0) continue;
                using var doc = JsonDocument.Parse(line);
                texts.Add(doc.RootElement.GetProperty("question").GetString()!);
                texts.Add(doc.RootElement.GetProperty("answer").GetString()!);
            }
        }
        return texts.ToArray();
    }

    /// <summary>
    /// Multilingual, emoji, whitespace-heavy and edge-case texts without special tokens. Left out on purpose:
    /// U+0085 (NEL), which JavaScript's \s does not match (ours, like Oniguruma's and Rust's, does; see README
    /// and SplitRegexTests), and lone surrogates (not valid in the JSON the peers read).
    /// </summary>
    public static readonly string[] Sample =
    [
        "",
        " ",
        "a",
        "Hello, world! How's it going? I'm fine; they're here, we've done it, you'll see, he'd go.",
        "DON'T YOU'LL I'M WE'VE THEY'RE SHE'D IT'S Rock'N'Roll O'Neil",
        "'s 't 're 've 'm 'll 'd ''s x's's 'S' 'sup '''",
        "你好，世界！今天天气很好。我们去公园吧。",
        "日本語のテキスト、カタカナとひらがな。東京は2024年に…",
        "안녕하세요 세계! 한국어 텍스트입니다.",
        "مرحبا بالعالم! هذا نص عربي مع أرقام ١٢٣٤٥ و 67890.",
        "שלום עולם, זה טקסט בעברית.",
        "नमस्ते दुनिया, यह हिंदी पाठ है।",
        "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
        "Привет, мир! Как дела? Ёжик в тумане.",
        "Γειά σου Κόσμε! Ελληνικά.",
        "Family: 👨‍👩‍👧‍👦, couple 👩‍❤️‍💋‍👨, flags 🇺🇸🇯🇵🇩🇪, skin tones 👍🏽👋🏿, keycaps 1️⃣ #️⃣",
        "🏳️‍🌈 rainbow 🏴‍☠️ pirate 🧑🏻‍💻 coder",
        "😀😃😄😁😆😅😂🤣 emoji run",
        "e\u0301 (decomposed) vs \u00e9, n\u0303, a\u0308\u0304, Z\u0351\u0352\u0353 T\u0336\u0337 zalgo",
        "q\u0307\u0323 reorders; \u1100\u1161\u11a8 jamo; \u212b angstrom; \u2126 ohm; \uf900 compat; \u0958 nukta",
        "Ä ä Ö ö Ü ü ß Ç ç Ñ ñ Å å Ø ø Æ æ œ",
        "tabs\there\t\tand\t\t\tmore\t",
        "  leading spaces",
        "trailing spaces   ",
        "many     spaces    between  words",
        "\n\n\nnewlines\n\nand\n",
        "mixed \t \n \r\n \r whitespace \r\n\r\n",
        "   \n   \n\t\n",
        "        ",
        "\u00a0nbsp\u00a0here \u3000ideographic\u3000space \u2003em\u2002en\u2009thin \u2028line\u2029para",
        "\ufeffBOM first, zero\ufeffwidth no-break \ufeff\ufeff spaces \ufeff\n\ufeff",
        "1234567890 12,345.67 3.14159 1e10 0x1F 007 ٣٤ ①②③ ½ ⅔ 10^9 -42 +7",
        "12345678901234567890123456789012345678901234567890",
        "𝐇𝐞𝐥𝐥𝐨 𝟏𝟐𝟑 𠮷野家 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈𐌰𐌹 Gothic",
        "!!!???...---___*** ((([[[{{{",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
        "$12.50 + €3 = £? ¥100 ₹50 ¢",
        "def f(x):\n    return x**2  # square\n\n\nclass A:\n\tpass\n",
        "https://example.com/a?b=c&d=e#frag mailto:someone@example.org",
        "{\"a\": [1, 2, 3], \"b\": {\"c\": null}}",
        "C:\\Windows\\System32\\drivers\\etc\\hosts",
        "«Guillemets» „Anführungszeichen“ “curly” ‘single’ — em – en … ellipsis",
        "Ünïcödé wörds wïth dïäcrïtïcs ånd lïgätürës ﬁ ﬂ",
        new string('a', 300),
        new string(' ', 100) + "x",
        string.Concat(Enumerable.Repeat("ha", 150)),
        new string('\n', 50),
        new string('!', 120),
        string.Concat(Enumerable.Repeat("😀", 40)),
        string.Concat(Enumerable.Repeat("数学", 130)),
        "The answer is 42.\n\n#### 42\n",
        "Mixed: English中文العربية日本語한국어Русский😀123abc",
    ];

    /// <summary>Texts holding Qwen's added tokens (for the qwen3 peer only: gpt-tokenizer@4.0.0 handles
    /// special tokens only at the start of a text).</summary>
    public static readonly string[] WithQwenSpecialTokens =
    [
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "<|endoftext|>",
        "text<|endoftext|>more text",
        "<think>\nLet me think.\n</think>\n\nThe answer is 4.",
        "<|im_start|><|im_end|><|im_start|>",
        "<|im_sta partial <|im_end| <<|im_end|>> <|im_end|>|>",
        "a <|im_end|>\u0338 combining after a special token",
        "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
        "<|vision_start|><|image_pad|><|vision_end|>",
        "  <|im_end|>  spaces around  <|endoftext|>  ",
    ];
}
