using System.Text;

namespace OnlineRl.Tokenizers;

/// <summary>
/// A byte-level tokenizer for small from-scratch models: ids 0-255 are the UTF-8 bytes of the text, then
/// 256, 257, 258 are the pad, BOS and EOS tokens. Token strings: <c>&lt;0x41&gt;</c> for byte 0x41, and
/// <c>&lt;pad&gt;</c>, <c>&lt;bos&gt;</c>, <c>&lt;eos&gt;</c>. Decoding replaces invalid UTF-8 with U+FFFD.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    private static readonly string[] Specials = [CharTokenizer.PadToken, CharTokenizer.BosToken, CharTokenizer.EosToken];

    /// <inheritdoc/>
    public int VocabSize => 256 + Specials.Length;

    /// <inheritdoc/>
    public int? PadId => 256;

    /// <inheritdoc/>
    public int? BosId => 257;

    /// <inheritdoc/>
    public int? EosId => 258;

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var ids = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) ids[i] = bytes[i];
        return ids;
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipSpecialTokens: false);

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var sb = new StringBuilder(ids.Length);
        var run = new List<byte>(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not in the vocabulary (size {VocabSize})");
            if (id < 256) { run.Add((byte)id); continue; }
            Flush();
            if (!skipSpecialTokens) sb.Append(Specials[id - 256]);
        }
        Flush();
        return sb.ToString();

        void Flush()
        {
            if (run.Count == 0) return;
            sb.Append(Encoding.UTF8.GetString(run.ToArray()));
            run.Clear();
        }
    }

    /// <inheritdoc/>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        int special = Array.IndexOf(Specials, token);
        if (special >= 0) return 256 + special;
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b)
            && token.AsSpan(3, 2).ToString().ToUpperInvariant() == token.Substring(3, 2))
            return b;
        return null;
    }

    /// <inheritdoc/>
    public string? IdToToken(int id) => id switch
    {
        >= 0 and < 256 => $"<0x{id:X2}>",
        >= 256 and < 259 => Specials[id - 256],
        _ => null,
    };

    /// <inheritdoc/>
    public bool IsSpecial(int id) => id is >= 256 and < 259;
}
