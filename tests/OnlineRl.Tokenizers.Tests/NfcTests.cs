using System.Globalization;
using System.Text;
using OnlineRl.Tokenizers.Text;
using Xunit.Abstractions;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>Our NFC (needed because InvariantGlobalization disables string.Normalize) against node's.</summary>
public sealed class NfcTests(ITestOutputHelper output)
{
    [Fact]
    public void Matches_node_on_every_bmp_character_and_on_combining_sequences()
    {
        var texts = new List<string>();
        for (int cp = 0x80; cp < 0x10000; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            texts.Add(((char)cp).ToString());
        }
        // Sequences around every code point with a combining class or a decomposition (incl. supplementary).
        var interesting = new List<int>();
        for (int cp = 0x300; cp < 0x110000; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            string s = char.ConvertFromUtf32(cp);
            if (Nfc.CombiningClass(cp) != 0 || !Nfc.IsQuickNormalized(s)) interesting.Add(cp);
        }
        foreach (int cp in interesting)
        {
            string c = char.ConvertFromUtf32(cp);
            texts.Add(c);
            texts.Add("a" + c);
            texts.Add("e" + c + "\u0301");
            texts.Add(c + "\u0323\u0301");
            texts.Add("\u1100" + c);
            texts.Add("o\u031b" + c + "x");
        }
        // Hangul: L+V, LV+T, and text mixing them with marks.
        for (int l = 0; l < 19; l += 3)
            for (int v = 0; v < 21; v += 2)
            {
                texts.Add($"{(char)(0x1100 + l)}{(char)(0x1161 + v)}");
                texts.Add($"{(char)(0x1100 + l)}{(char)(0x1161 + v)}{(char)(0x11A8 + v)}\u0301");
            }
        texts.Add("가\u11A8 각\u11A8 \u1100\u1161\u11A8\u11A8");
        var expected = Peers.Nfc(texts);
        int mismatches = 0;
        string? first = null;
        for (int i = 0; i < texts.Count; i++)
        {
            string ours = Nfc.Normalize(texts[i]);
            if (ours == expected[i]) continue;
            mismatches++;
            first ??= $"{Hex(texts[i])}: ours {Hex(ours)} node {Hex(expected[i])}";
        }
        output.WriteLine($"NFC (tables: Unicode {Nfc.UnicodeVersion}): {texts.Count} texts, {interesting.Count} interesting code points, {mismatches} mismatches");
        Assert.True(mismatches == 0, $"{mismatches} of {texts.Count} differ from node; first: {first}");
    }

    [Fact]
    public void Known_cases()
    {
        Assert.Equal("\u00e9", Nfc.Normalize("e\u0301"));
        Assert.Equal("q\u0323\u0307", Nfc.Normalize("q\u0307\u0323")); // canonical reordering, no composite
        Assert.Equal("\u1e69", Nfc.Normalize("s\u0323\u0307"));        // ṩ
        Assert.Equal("\u1e69", Nfc.Normalize("s\u0307\u0323"));
        Assert.Equal("\uac01", Nfc.Normalize("\u1100\u1161\u11a8"));    // 각
        Assert.Equal("\u00c5", Nfc.Normalize("\u212b"));                // singleton
        Assert.Equal("\u0915\u093c", Nfc.Normalize("\u0958"));          // composition exclusion
        Assert.Equal("\u226f", Nfc.Normalize(">\u0338"));
        string ascii = "plain ascii text";
        Assert.Same(ascii, Nfc.Normalize(ascii));
        // U+1D15E (musical half note) is excluded from composition: NFC decomposes it for good.
        Assert.Equal("\ud83d\ude00 \ud834\udd57\ud834\udd65", Nfc.Normalize("\ud83d\ude00 \ud834\udd5e"));
    }

    private static string Hex(string s)
    {
        var sb = new StringBuilder();
        foreach (var r in s.EnumerateRunes()) sb.Append(CultureInfo.InvariantCulture, $"{r.Value:X4} ");
        return sb.ToString().TrimEnd();
    }
}
