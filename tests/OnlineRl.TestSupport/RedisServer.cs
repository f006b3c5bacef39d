using OnlineRl.Redis;
using Xunit;

namespace OnlineRl.TestSupport;

/// <summary>
/// A redis-server for tests: a free loopback port, a temporary directory, append-only persistence (a
/// restart keeps the data). Call from a <c>[SkippableFact]</c>: when redis-server is missing the test is
/// skipped with the reason.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private static readonly Lazy<RedisServer> SharedServer = new(() =>
    {
        var server = Start();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Dispose();
        return server;
    });

    private readonly RedisServerProcess _process;

    private RedisServer(RedisServerProcess process) => _process = process;

    /// <summary>Why Redis tests cannot run here, or null when they can.</summary>
    public static string? MissingReason => RedisServerProcess.FindExecutable() is null
        ? "needs redis-server (apt-get install redis-server; ./test.sh installs it)"
        : null;

    /// <summary>
    /// One server for the whole test run, for tests that neither restart nor kill it (isolate them with
    /// distinct key prefixes).
    /// </summary>
    public static RedisServer Shared
    {
        get
        {
            SkipIfMissing();
            return SharedServer.Value;
        }
    }

    /// <summary>Starts a private server (skips the test when redis-server is missing).</summary>
    /// <param name="extraArguments">More redis-server options (a password, ACL users, a TLS port).</param>
    public static RedisServer Start(params string[] extraArguments)
    {
        SkipIfMissing();
        return new RedisServer(RedisServerProcess.Start(persistent: true, extraArguments));
    }

    /// <summary><c>redis://127.0.0.1:PORT</c>.</summary>
    public string Address => _process.Address;

    /// <summary>The port on 127.0.0.1.</summary>
    public int Port => _process.Port;

    /// <summary>Stops the server cleanly and starts it again on the same port with the same data.</summary>
    public void Restart() => _process.Restart();

    /// <summary>Kills the server (SIGKILL); <see cref="Restart"/> brings it back with its data.</summary>
    public void Kill() => _process.Kill();

    /// <summary>Stops the server and deletes its data.</summary>
    public void Dispose() => _process.Dispose();

    private static void SkipIfMissing()
    {
        var reason = MissingReason;
        if (reason is not null) Console.WriteLine($"skipped: {reason}");
        Skip.If(reason is not null, reason);
    }
}
