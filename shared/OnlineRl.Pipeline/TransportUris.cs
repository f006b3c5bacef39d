using OnlineRl.Messaging;

namespace OnlineRl.Pipeline;

/// <summary>
/// The syntax of the transport URIs a configuration names (<c>transport.bus</c>, <c>transport.weights</c>): checked
/// and redacted here without the transports themselves, which an <see cref="ITransportFactory"/> builds.
/// </summary>
public static class TransportUris
{
    /// <summary>The in-process bus: the services of one process only.</summary>
    public const string InProcess = "inproc";
    /// <summary>Weights kept in this process's memory.</summary>
    public const string Memory = "memory";

    /// <summary>Whether <paramref name="uri"/> is inproc, a Redis address (<see cref="RedisAddress"/>) or kafka://HOST:PORT[,HOST:PORT...].</summary>
    public static bool IsBusUri(string uri) =>
        uri == InProcess || IsRedisUri(uri) || (uri.StartsWith("kafka://", StringComparison.Ordinal) && uri["kafka://".Length..].Split(',').All(IsHostPort));

    /// <summary>Whether <paramref name="uri"/> is memory or a Redis address.</summary>
    public static bool IsWeightsUri(string uri) => uri == Memory || IsRedisUri(uri);

    /// <summary>A transport URI as logs, errors and reports may show it: a Redis password replaced by ***.</summary>
    public static string Describe(string uri) => IsRedisScheme(uri) ? RedisAddress.Describe(uri) : uri;

    /// <summary>Whether <paramref name="uri"/> names a bus or store shared by separate processes.</summary>
    public static bool IsShared(string uri) => uri != InProcess && uri != Memory;

    /// <summary>Whether <paramref name="uri"/> is a well-formed redis:// or rediss:// address.</summary>
    public static bool IsRedisUri(string uri) => IsRedisScheme(uri) && RedisAddress.IsAddress(uri);

    private static bool IsRedisScheme(string uri) =>
        uri.StartsWith(RedisAddress.Scheme, StringComparison.Ordinal) || uri.StartsWith(RedisAddress.TlsScheme, StringComparison.Ordinal);

    private static bool IsHostPort(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon > 0 && int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
               && port is > 0 and <= 65535 && !text[..colon].Any(char.IsWhiteSpace);
    }
}
