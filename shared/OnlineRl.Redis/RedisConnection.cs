using StackExchange.Redis;

namespace OnlineRl.Redis;

/// <summary>Opens StackExchange.Redis connections from the project's <c>redis://HOST:PORT</c> addresses.</summary>
public static class RedisConnection
{
    /// <summary>The scheme of transport and weight-store addresses.</summary>
    public const string Scheme = "redis://";

    /// <summary>
    /// Client settings for an address <c>redis://HOST:PORT</c> (or a plain <c>HOST:PORT</c>): never give up
    /// on a server that is down or restarting (reconnect in the background), and allow slow replies for
    /// blobs of many megabytes.
    /// </summary>
    /// <param name="address">The server address.</param>
    /// <exception cref="FormatException">The address is not HOST:PORT.</exception>
    public static ConfigurationOptions Options(string address)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        var endpoint = address.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? address[Scheme.Length..] : address;
        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint[(colon + 1)..], out var port) || port is < 1 or > 65535)
            throw new FormatException($"Redis address '{address}' is not {Scheme}HOST:PORT.");
        var options = new ConfigurationOptions
        {
            AbortOnConnectFail = false, // a server that is down at start or restarting is waited for, not fatal
            ConnectRetry = 3,
            ConnectTimeout = 5000,
            // A 4 MiB weight chunk over a busy link, or a command queued behind several, may take seconds.
            SyncTimeout = 30_000,
            AsyncTimeout = 30_000,
            ReconnectRetryPolicy = new LinearRetry(250),
        };
        options.EndPoints.Add(endpoint[..colon], port);
        return options;
    }

    /// <summary>Connects to <paramref name="address"/> (returns even while the server is unreachable; commands then fail until it is back).</summary>
    /// <param name="address"><c>redis://HOST:PORT</c>.</param>
    public static ConnectionMultiplexer Connect(string address) => ConnectionMultiplexer.Connect(Options(address));

    /// <summary>Errors that go away by themselves: connection loss, timeouts, a server still loading its data.</summary>
    internal static bool IsTransient(Exception e) =>
        e is RedisConnectionException or RedisTimeoutException ||
        (e is RedisServerException s && (s.Message.StartsWith("LOADING", StringComparison.Ordinal) ||
                                         s.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal)));
}
