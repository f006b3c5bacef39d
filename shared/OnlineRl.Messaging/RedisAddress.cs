using System.Globalization;

namespace OnlineRl.Messaging;

/// <summary>
/// A Redis server address: <c>redis://[[USER]:PASSWORD@]HOST:PORT</c>, or <c>rediss://...</c> for TLS. USER and
/// PASSWORD are percent-encoded; a password alone (<c>redis://:PASSWORD@HOST:PORT</c>) is Redis's <c>requirepass</c>, a
/// user and password an ACL user.
/// </summary>
/// <remarks>
/// Only the syntax lives here, beside the bus abstraction, so that a configuration can check and redact an address
/// without referencing the Redis transport (OnlineRl.Redis's <c>RedisConnection</c> connects).
/// </remarks>
/// <param name="Tls">Whether the address is <c>rediss://</c>.</param>
/// <param name="Host">The server's host name or IP address.</param>
/// <param name="Port">The server's port (1..65535).</param>
/// <param name="User">The ACL user (null: the default user).</param>
/// <param name="Password">The password (null: none).</param>
public sealed record RedisAddress(bool Tls, string Host, int Port, string? User, string? Password)
{
    /// <summary>The scheme of plain addresses.</summary>
    public const string Scheme = "redis://";

    /// <summary>The scheme of TLS addresses.</summary>
    public const string TlsScheme = "rediss://";

    /// <summary>Parses <paramref name="address"/> (the scheme may be left out for a plain <c>HOST:PORT</c>).</summary>
    /// <exception cref="FormatException">The address is malformed (the message never shows a password).</exception>
    public static RedisAddress Parse(string address)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        var tls = address.StartsWith(TlsScheme, StringComparison.OrdinalIgnoreCase);
        var rest = tls ? address[TlsScheme.Length..]
            : address.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? address[Scheme.Length..]
            : address;
        string? user = null, password = null;
        var at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            var credentials = rest[..at];
            rest = rest[(at + 1)..];
            var colon = credentials.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon < 0 ? credentials : credentials[..colon]);
            password = colon < 0 ? null : Uri.UnescapeDataString(credentials[(colon + 1)..]);
            if (user.Length == 0) user = null;
        }
        var portColon = rest.LastIndexOf(':');
        if (portColon <= 0 || !int.TryParse(rest[(portColon + 1)..].TrimEnd('/'), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            || port is < 1 or > 65535 || rest[..portColon].Any(char.IsWhiteSpace))
            throw new FormatException($"Redis address '{Describe(address, rest)}' is not {Scheme}[[USER]:PASSWORD@]HOST:PORT or {TlsScheme}...");
        return new RedisAddress(tls, rest[..portColon], port, user, password);
    }

    /// <summary>Whether <paramref name="address"/> is a well-formed <c>redis://</c> or <c>rediss://</c> address.</summary>
    public static bool IsAddress(string address)
    {
        try
        {
            Parse(address);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// The address as logs and errors may show it: scheme, user and endpoint, never the password
    /// (<c>redis://alice:***@127.0.0.1:6379</c>).
    /// </summary>
    public static string Describe(string address)
    {
        try
        {
            var (tls, host, port, user, password) = Parse(address);
            var credentials = user is null && password is null ? "" : $"{user}{(password is null ? "" : ":***")}@";
            return $"{(tls ? TlsScheme : Scheme)}{credentials}{host}:{port.ToString(CultureInfo.InvariantCulture)}";
        }
        catch (FormatException)
        {
            return "(an unparsable Redis address)";
        }
    }

    /// <summary>A malformed address for an error message: only the part after any credentials.</summary>
    private static string Describe(string address, string afterCredentials) =>
        address.Contains('@', StringComparison.Ordinal) ? $"...@{afterCredentials}" : address;
}
