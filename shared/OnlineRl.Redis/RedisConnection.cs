using OnlineRl.Messaging;
using StackExchange.Redis;

namespace OnlineRl.Redis;

/// <summary>
/// Certificates for a Redis server spoken to over TLS (<c>rediss://</c>). All paths are PEM files; empty: not used.
/// </summary>
/// <param name="CaFile">The certificate authority that signed the server's certificate (empty: the system's trust store).</param>
/// <param name="ClientCertificateFile">This client's certificate, for a server that requires one (Redis's default, <c>tls-auth-clients yes</c>).</param>
/// <param name="ClientKeyFile">The client certificate's private key.</param>
public sealed record RedisTls(string CaFile = "", string ClientCertificateFile = "", string ClientKeyFile = "");

/// <summary>
/// Opens StackExchange.Redis connections from the project's addresses (<see cref="RedisAddress"/>:
/// <c>redis://[[USER]:PASSWORD@]HOST:PORT</c>, or <c>rediss://...</c> for TLS).
/// </summary>
public static class RedisConnection
{
    /// <summary>
    /// Client settings for <paramref name="address"/>: never give up on a server that is down or restarting
    /// (reconnect in the background), allow slow replies for blobs of many megabytes, credentials and TLS as given.
    /// </summary>
    /// <param name="address">The server address (the scheme may be left out for a plain <c>HOST:PORT</c>).</param>
    /// <param name="tls">Certificates for a <c>rediss://</c> address (null: the system's trust store, no client certificate).</param>
    /// <exception cref="FormatException">The address is malformed (the message never shows a password).</exception>
    public static ConfigurationOptions Options(string address, RedisTls? tls = null)
    {
        var (useTls, host, port, user, password) = RedisAddress.Parse(address);
        var options = new ConfigurationOptions
        {
            AbortOnConnectFail = false, // a server that is down at start or restarting is waited for, not fatal
            ConnectRetry = 3,
            ConnectTimeout = 5000,
            // A 4 MiB weight chunk over a busy link, or a command queued behind several, may take seconds.
            SyncTimeout = 30_000,
            AsyncTimeout = 30_000,
            ReconnectRetryPolicy = new LinearRetry(250),
            User = user,
            Password = password,
            Ssl = useTls,
        };
        options.EndPoints.Add(host, port);
        if (useTls)
        {
            options.SslHost = host;
            if (tls is { CaFile.Length: > 0 }) options.TrustIssuer(tls.CaFile);
            if (tls is { ClientCertificateFile.Length: > 0 })
                options.SetUserPemCertificate(tls.ClientCertificateFile, tls.ClientKeyFile.Length > 0 ? tls.ClientKeyFile : null);
        }
        return options;
    }

    /// <summary>
    /// Connects to <paramref name="address"/>. A server that cannot be reached yet is waited for in the background
    /// (commands fail until it is up), but one that refuses the credentials or the TLS handshake fails at once.
    /// </summary>
    /// <param name="address">The server address.</param>
    /// <param name="tls">Certificates for a <c>rediss://</c> address.</param>
    /// <exception cref="FormatException">The address is malformed.</exception>
    /// <exception cref="TransportAuthenticationException">The server refused the password, user or certificates (the message names the endpoint).</exception>
    public static ConnectionMultiplexer Connect(string address, RedisTls? tls = null)
    {
        var options = Options(address, tls);
        // First a connect that reports why it failed; only a server that is merely unreachable is then waited for.
        var probe = options.Clone();
        probe.AbortOnConnectFail = true;
        probe.ConnectRetry = 1;
        ConnectionMultiplexer connection;
        try
        {
            connection = ConnectionMultiplexer.Connect(probe);
        }
        catch (RedisConnectionException e) when (e.FailureType == ConnectionFailureType.AuthenticationFailure || IsRefusal(e))
        {
            throw Refused(address, e);
        }
        catch (RedisConnectionException e) when (options.Ssl && AcceptsConnections(options))
        {
            // Up, but it ended the TLS session before answering: what Redis does when a client certificate it requires is
            // missing or not trusted, and what TLS spoken to a plain port looks like.
            throw Refused(address, e, "the server accepted the connection but ended the TLS session (a missing or untrusted client certificate, or TLS to a plain port?)");
        }
        catch (RedisConnectionException)
        {
            return ConnectionMultiplexer.Connect(options);
        }
        try
        {
            // A server that wants a password but was given none accepts the connection and refuses each command.
            connection.GetDatabase().Ping();
            return connection;
        }
        catch (RedisServerException e) when (IsRefusal(e))
        {
            connection.Dispose();
            throw Refused(address, e);
        }
        catch (RedisException)
        {
            return connection; // gone again already: reconnects in the background like any other outage
        }
    }

    /// <summary>Errors that go away by themselves: connection loss, timeouts, a server still loading its data
    /// (not a refused password or certificate: see <see cref="IsRefusal"/>).</summary>
    internal static bool IsTransient(Exception e) =>
        (e is RedisConnectionException c && c.FailureType != ConnectionFailureType.AuthenticationFailure && !IsRefusal(c)) ||
        e is RedisTimeoutException ||
        (e is RedisServerException s && (s.Message.StartsWith("LOADING", StringComparison.Ordinal) ||
                                         s.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal)));

    /// <summary>The server refused the credentials or the TLS handshake: retrying cannot help.</summary>
    internal static bool IsAuthenticationFailure(Exception e) =>
        (e is RedisConnectionException c && c.FailureType == ConnectionFailureType.AuthenticationFailure) || (e is RedisException && IsRefusal(e));

    /// <summary>The server refused who we are: NOAUTH (a password is required), WRONGPASS (wrong user or password),
    /// NOPERM (the ACL user may not run a command).</summary>
    internal static bool IsRefusal(Exception e) =>
        e.ToString() is var text && (text.Contains("NOAUTH", StringComparison.Ordinal) || text.Contains("WRONGPASS", StringComparison.Ordinal) ||
                                     text.Contains("NOPERM", StringComparison.Ordinal));

    /// <summary>The error for a refused connection: names the endpoint and the server's reason, never the password.</summary>
    internal static TransportAuthenticationException Refused(string address, Exception e, string? explanation = null)
    {
        var reason = explanation ?? (e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message);
        if (RedisAddress.Parse(address).Password is { Length: > 0 } password) reason = reason.Replace(password, "***", StringComparison.Ordinal);
        return new TransportAuthenticationException(
            $"Redis at {RedisAddress.Describe(address)} refused the connection (check the user, password and TLS certificates): {reason}", e);
    }

    /// <summary>Whether the (first) endpoint accepts TCP connections within the connect timeout.</summary>
    private static bool AcceptsConnections(ConfigurationOptions options)
    {
        using var client = new System.Net.Sockets.TcpClient();
        try
        {
            var connecting = options.EndPoints[0] switch
            {
                System.Net.DnsEndPoint dns => client.ConnectAsync(dns.Host, dns.Port),
                System.Net.IPEndPoint ip => client.ConnectAsync(ip),
                _ => Task.FromException(new NotSupportedException()),
            };
            return connecting.Wait(options.ConnectTimeout);
        }
        catch (AggregateException)
        {
            return false;
        }
    }
}
