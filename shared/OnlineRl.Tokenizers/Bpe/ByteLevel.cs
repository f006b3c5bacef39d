using System.Buffers;

namespace OnlineRl.Tokenizers;

/// <summary>
/// GPT-2's reversible byte-to-character map: every byte value gets a printable character, so that BPE
/// vocabularies can be stored as text. Printable Latin-1 bytes map to themselves; the other 68 bytes
/// (controls, space, soft hyphen...) map to U+0100 onwards in byte order (space becomes 'Ġ', '\n' 'Ċ').
/// </summary>
public static class ByteLevel
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly short[] CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + next++);
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var map = new short[324];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++) map[ByteToChar[b]] = (short)b;
        return map;
    }

    /// <summary>The character that stands for byte <paramref name="b"/>.</summary>
    public static char CharOf(byte b) => ByteToChar[b];

    /// <summary>The byte a byte-level character stands for, or -1 when <paramref name="c"/> is not one.</summary>
    public static int ByteOf(char c) => c < CharToByte.Length ? CharToByte[c] : -1;

    /// <summary>Maps UTF-8 bytes to their byte-level string (the form vocab.json/merges use).</summary>
    public static string ToByteLevelString(ReadOnlySpan<byte> bytes)
    {
        char[]? rented = null;
        Span<char> chars = bytes.Length <= 512 ? stackalloc char[bytes.Length] : (rented = ArrayPool<char>.Shared.Rent(bytes.Length));
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        string result = new(chars[..bytes.Length]);
        if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        return result;
    }

    /// <summary>Maps a byte-level string back to bytes; null when a character is not a byte-level character.</summary>
    public static byte[]? FromByteLevelString(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            int b = ByteOf(token[i]);
            if (b < 0) return null;
            bytes[i] = (byte)b;
        }
        return bytes;
    }
}
