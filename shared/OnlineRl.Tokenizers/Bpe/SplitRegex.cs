using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace OnlineRl.Tokenizers;

/// <summary>
/// A pre-tokenizer regex (Oniguruma/Rust syntax as written in tokenizer.json) run with .NET's engine so
/// that it splits text the way the Hugging Face and tiktoken tokenizers do:
/// <list type="bullet">
/// <item>possessive quantifiers (<c>?+ *+ ++ {n,m}+</c>), which .NET lacks, become atomic groups;</item>
/// <item>case-insensitive groups <c>(?i:...)</c> become explicit ASCII case classes (<c>'s</c> matches
/// <c>'S</c> but not <c>'ſ</c>, as in the JavaScript tokenizers);</item>
/// <item>.NET matches UTF-16 code units, so a character outside the BMP (e.g. 𝐀, 𠮷) would be two
/// "surrogate" characters to it: such text is matched on a copy where each of these characters is
/// replaced by one BMP character of the same Unicode category, and the matches are mapped back.</item>
/// </list>
/// </summary>
internal sealed class SplitRegex
{
    private readonly Regex _regex;
    private readonly char[] _categoryStandIns;

    /// <summary>The pattern as given.</summary>
    public string Pattern { get; }

    /// <summary>The pattern after translation to .NET syntax.</summary>
    public string DotNetPattern { get; }

    /// <exception cref="ArgumentException">The pattern cannot be compiled; the message says why.</exception>
    public SplitRegex(string pattern)
    {
        Pattern = pattern;
        DotNetPattern = Translate(pattern);
        _regex = new Regex(DotNetPattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        _categoryStandIns = ChooseStandIns(DotNetPattern);
    }

    /// <summary>Appends the (start, length) of every non-empty match in <paramref name="text"/>, in order.</summary>
    public void FindMatches(ReadOnlySpan<char> text, List<(int Start, int Length)> matches)
    {
        if (text.IndexOfAnyInRange('\uD800', '\uDBFF') < 0)
        {
            foreach (var m in _regex.EnumerateMatches(text))
                if (m.Length > 0) matches.Add((m.Index, m.Length));
            return;
        }
        // Stand-in copy: one char per code point; origin[i] = index in text of the stand-in char i.
        var proxy = new char[text.Length];
        var origin = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            origin[n] = i;
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int cp = char.ConvertToUtf32(c, text[i + 1]);
                proxy[n++] = _categoryStandIns[(int)CharUnicodeInfo.GetUnicodeCategory(cp)];
                i++;
            }
            else
            {
                proxy[n++] = c;
            }
        }
        origin[n] = text.Length;
        foreach (var m in _regex.EnumerateMatches(proxy.AsSpan(0, n)))
        {
            if (m.Length == 0) continue;
            int start = origin[m.Index];
            matches.Add((start, origin[m.Index + m.Length] - start));
        }
    }

    // For each Unicode category a BMP character outside ASCII/Latin-1 that the pattern does not name
    // literally, preferring the higher BMP blocks (rarely named in tokenizer patterns).
    private static char[] ChooseStandIns(string pattern)
    {
        var standIns = new char[32];
        var found = new bool[32];
        for (int c = 0xFFFD; c >= 0x100; c--)
        {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            int cat = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (found[cat] || pattern.Contains((char)c) || char.IsWhiteSpace((char)c)) continue;
            standIns[cat] = (char)c;
            found[cat] = true;
        }
        for (int cat = 0; cat < 32; cat++)
            if (!found[cat]) standIns[cat] = '\uFFFD';
        return standIns;
    }

    /// <summary>Rewrites Oniguruma/Rust constructs .NET lacks (see the class remarks).</summary>
    internal static string Translate(string pattern)
    {
        var sb = new StringBuilder(pattern.Length + 16);
        int pos = 0;
        TranslateSequence(pattern, ref pos, sb, closing: false);
        if (pos != pattern.Length) throw new ArgumentException($"unbalanced ')' at offset {pos}");
        return sb.ToString();
    }

    // Translates atoms and quantifiers up to the end of the pattern or the ')' closing the current group.
    private static void TranslateSequence(string p, ref int pos, StringBuilder output, bool closing)
    {
        int atomStart = -1; // index in output where the last quantifiable atom starts
        while (pos < p.Length)
        {
            char c = p[pos];
            if (c == ')')
            {
                if (!closing) throw new ArgumentException($"unbalanced ')' at offset {pos}");
                return;
            }
            if (c == '|')
            {
                output.Append(c);
                pos++;
                atomStart = -1;
                continue;
            }
            if (c is '?' or '*' or '+' or '{' && atomStart >= 0 && TryReadQuantifier(p, pos, out int quantEnd))
            {
                string quant = p[pos..quantEnd];
                pos = quantEnd;
                if (pos < p.Length && p[pos] == '+')
                {
                    // Possessive: X?+ == (?>X?)
                    pos++;
                    output.Insert(atomStart, "(?>");
                    output.Append(quant).Append(')');
                }
                else
                {
                    output.Append(quant);
                    if (pos < p.Length && p[pos] == '?') output.Append(p[pos++]); // lazy
                }
                atomStart = -1;
                continue;
            }
            atomStart = output.Length;
            if (c == '\\')
            {
                int end = EscapeEnd(p, pos);
                output.Append(p, pos, end - pos);
                pos = end;
            }
            else if (c == '[')
            {
                int end = ClassEnd(p, pos);
                output.Append(p, pos, end - pos);
                pos = end;
            }
            else if (c == '(')
            {
                if (string.CompareOrdinal(p, pos, "(?i:", 0, 4) == 0 && TryCaseInsensitiveGroup(p, pos, output, out int groupEnd))
                {
                    pos = groupEnd;
                    continue;
                }
                int headerEnd = GroupHeaderEnd(p, pos);
                output.Append(p, pos, headerEnd - pos);
                pos = headerEnd;
                TranslateSequence(p, ref pos, output, closing: true);
                if (pos >= p.Length) throw new ArgumentException("missing ')'");
                output.Append(')');
                pos++;
            }
            else
            {
                output.Append(c);
                pos++;
                if (c is '^' or '$') atomStart = -1;
            }
        }
        if (closing) throw new ArgumentException("missing ')'");
    }

    private static bool TryReadQuantifier(string p, int pos, out int end)
    {
        end = pos + 1;
        if (p[pos] != '{') return true;
        int i = pos + 1;
        int digits = 0;
        while (i < p.Length && char.IsAsciiDigit(p[i])) { i++; digits++; }
        if (digits == 0) return false;
        if (i < p.Length && p[i] == ',')
        {
            i++;
            while (i < p.Length && char.IsAsciiDigit(p[i])) i++;
        }
        if (i >= p.Length || p[i] != '}') return false;
        end = i + 1;
        return true;
    }

    private static int EscapeEnd(string p, int pos)
    {
        if (pos + 1 >= p.Length) throw new ArgumentException("pattern ends with '\\'");
        char e = p[pos + 1];
        if ((e is 'p' or 'P' or 'x' or 'u') && pos + 2 < p.Length && p[pos + 2] == '{')
        {
            int close = p.IndexOf('}', pos + 3);
            if (close < 0) throw new ArgumentException($"missing '}}' after offset {pos}");
            return close + 1;
        }
        if (e is 'p' or 'P') return Math.Min(p.Length, pos + 3); // \pL
        if (e == 'x') return Math.Min(p.Length, pos + 4);
        if (e == 'u') return Math.Min(p.Length, pos + 6);
        return pos + 2;
    }

    private static int ClassEnd(string p, int pos)
    {
        int i = pos + 1;
        if (i < p.Length && p[i] == '^') i++;
        if (i < p.Length && p[i] == ']') i++; // a leading ']' is literal
        while (i < p.Length)
        {
            char c = p[i];
            if (c == '\\') { i = EscapeEnd(p, i); continue; }
            if (c == '[') { i = ClassEnd(p, i); continue; } // nested class (Oniguruma set syntax)
            if (c == ']') return i + 1;
            i++;
        }
        throw new ArgumentException($"missing ']' for the class at offset {pos}");
    }

    private static int GroupHeaderEnd(string p, int pos)
    {
        if (pos + 1 >= p.Length || p[pos + 1] != '?') return pos + 1;
        // (?: (?= (?! (?<= (?<! (?> (?<name> (?'name' (?flags:
        int i = pos + 2;
        if (i < p.Length && (p[i] is ':' or '=' or '!' or '>')) return i + 1;
        if (i + 1 < p.Length && p[i] == '<' && (p[i + 1] is '=' or '!')) return i + 2;
        if (i < p.Length && (p[i] is '<' or '\''))
        {
            char close = p[i] == '<' ? '>' : '\'';
            int end = p.IndexOf(close, i + 1);
            if (end < 0) throw new ArgumentException($"unterminated group name at offset {pos}");
            return end + 1;
        }
        while (i < p.Length && (char.IsAsciiLetter(p[i]) || p[i] == '-')) i++;
        if (i < p.Length && p[i] == ':') return i + 1;
        if (i < p.Length && p[i] == ')') return i; // inline flags (?i) apply to the rest
        throw new ArgumentException($"unsupported group syntax at offset {pos}");
    }

    // (?i:...) holding no nested group: ASCII letters become [xX] (inside classes both cases are added).
    private static bool TryCaseInsensitiveGroup(string p, int pos, StringBuilder output, out int end)
    {
        end = -1;
        var sb = new StringBuilder("(?:");
        int i = pos + 4;
        while (i < p.Length && p[i] != ')')
        {
            char c = p[i];
            if (c == '(') return false;
            if (c == '\\')
            {
                int e = EscapeEnd(p, i);
                sb.Append(p, i, e - i);
                i = e;
            }
            else if (c == '[')
            {
                int e = ClassEnd(p, i);
                string cls = p[i..e];
                if (cls.Contains('[', StringComparison.Ordinal) && cls.IndexOf('[', 1) > 0) return false;
                var expanded = new StringBuilder();
                for (int k = 0; k < cls.Length; k++)
                {
                    char x = cls[k];
                    if (x == '\\') { int ee = EscapeEnd(cls, k); expanded.Append(cls, k, ee - k); k = ee - 1; continue; }
                    expanded.Append(x);
                    if (char.IsAsciiLetter(x) && !(k > 0 && cls[k - 1] == '-') && !(k + 1 < cls.Length && cls[k + 1] == '-'))
                        expanded.Append(char.IsAsciiLetterLower(x) ? char.ToUpperInvariant(x) : char.ToLowerInvariant(x));
                    else if (char.IsAsciiLetter(x)) return false; // letter ranges: leave to the engine
                }
                sb.Append(expanded);
                i = e;
            }
            else if (char.IsAsciiLetter(c))
            {
                sb.Append('[').Append(char.ToLowerInvariant(c)).Append(char.ToUpperInvariant(c)).Append(']');
                i++;
            }
            else
            {
                sb.Append(c);
                i++;
            }
        }
        if (i >= p.Length) return false;
        sb.Append(')');
        output.Append(sb);
        end = i + 1;
        return true;
    }
}
