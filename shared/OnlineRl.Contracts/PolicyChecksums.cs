using System.Security.Cryptography;

namespace OnlineRl.Contracts;

/// <summary>The checksum format of <see cref="PolicyVersion.Checksum"/>: "sha256:" and 64 lowercase hex digits.</summary>
public static class PolicyChecksums
{
    /// <summary>The prefix of every checksum.</summary>
    public const string Sha256Prefix = "sha256:";

    /// <summary>The checksum of <paramref name="data"/> ("sha256:" + lowercase hex).</summary>
    /// <param name="data">The bytes to hash.</param>
    public static string Sha256(ReadOnlySpan<byte> data) =>
        Sha256Prefix + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>True when <paramref name="checksum"/> has the form "sha256:" + 64 lowercase hex digits.</summary>
    /// <param name="checksum">The text to check.</param>
    public static bool IsWellFormed(string? checksum)
    {
        if (checksum is null || checksum.Length != Sha256Prefix.Length + 64 || !checksum.StartsWith(Sha256Prefix, StringComparison.Ordinal))
            return false;
        foreach (var c in checksum.AsSpan(Sha256Prefix.Length))
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f')) return false;
        return true;
    }
}
