using System.Text;
using Xunit.Abstractions;

namespace OnlineRl.Tokenizers.Tests;

internal static class ParityAssert
{
    /// <summary>Fails with the first differences when any text's ids differ from the peer's.</summary>
    public static void SameIds(IReadOnlyList<string> texts, int[][] expected, int[][] actual, ITokenizer tokenizer,
        string peer, ITestOutputHelper output)
    {
        Assert.Equal(texts.Count, expected.Length);
        Assert.Equal(texts.Count, actual.Length);
        var mismatches = new List<int>();
        long tokens = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            tokens += expected[i].Length;
            if (!expected[i].AsSpan().SequenceEqual(actual[i])) mismatches.Add(i);
        }
        output.WriteLine($"{peer}: {texts.Count} texts, {tokens} peer tokens, {mismatches.Count} mismatches");
        if (mismatches.Count == 0) return;
        var sb = new StringBuilder($"{mismatches.Count} of {texts.Count} texts encode differently from {peer}; first ones:\n");
        foreach (int i in mismatches.Take(5))
        {
            int at = 0;
            while (at < Math.Min(expected[i].Length, actual[i].Length) && expected[i][at] == actual[i][at]) at++;
            sb.Append($"- text {i}: {Escape(texts[i], 200)}\n  first difference at token {at}: ours [{Show(actual[i], at, tokenizer)}] peer [{Show(expected[i], at, tokenizer)}]\n");
        }
        Assert.Fail(sb.ToString());
    }

    /// <summary>Id sequences that exercise decoding: each distinct id of the texts' encodings alone, and every
    /// prefix of the encodings up to 60 tokens long (prefixes cut multi-byte characters).</summary>
    public static List<int[]> DecodeCases(ITokenizer tokenizer, IEnumerable<string> texts)
    {
        var idLists = new List<int[]>();
        var seen = new HashSet<int>();
        foreach (string text in texts)
        {
            int[] ids = tokenizer.Encode(text);
            foreach (int id in ids) if (seen.Add(id)) idLists.Add([id]);
            if (ids.Length <= 60)
                for (int k = 2; k <= ids.Length; k++) idLists.Add(ids[..k]);
        }
        return idLists;
    }

    /// <summary>Fails with the first difference when any decoding differs from the peer's.</summary>
    public static void SameDecodes(IReadOnlyList<int[]> idLists, string[] expected, ITokenizer tokenizer, ITestOutputHelper output)
    {
        Assert.Equal(idLists.Count, expected.Length);
        int mismatches = 0;
        string? first = null;
        for (int i = 0; i < idLists.Count; i++)
        {
            string ours = tokenizer.Decode(idLists[i]);
            if (ours == expected[i]) continue;
            mismatches++;
            first ??= $"ids [{string.Join(", ", idLists[i].Take(20))}]: ours {Escape(ours, 100)} peer {Escape(expected[i], 100)}";
        }
        output.WriteLine($"decode: {idLists.Count} id sequences, {mismatches} mismatches");
        Assert.True(mismatches == 0, $"{mismatches} of {idLists.Count} decodes differ; first: {first}");
    }

    private static string Show(int[] ids, int at, ITokenizer tokenizer) =>
        string.Join(", ", ids.Skip(at).Take(6).Select(id => $"{id}:{Escape(tokenizer.IdToToken(id) ?? "?", 30)}"));

    public static string Escape(string s, int max)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s.Length > max ? s[..max] : s)
        {
            if (c is '\n') sb.Append("\\n");
            else if (c is '\t') sb.Append("\\t");
            else if (c is '\r') sb.Append("\\r");
            else if (c < 0x20 || char.IsSurrogate(c) || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.NonSpacingMark
                     or System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.SpaceSeparator && c != ' ')
                sb.Append($"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        return sb.Append(s.Length > max ? "\"..." : "\"").ToString();
    }
}
