using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OnlineRl.Redis;

/// <summary>
/// A private redis-server on a free loopback port with its data in a temporary directory, for tests and
/// benchmarks. Disposing stops it and deletes the directory.
/// </summary>
public sealed class RedisServerProcess : IDisposable
{
    private readonly string _executable;
    private readonly bool _persistent;
    private readonly string[] _extraArguments;
    private Process? _process;

    private RedisServerProcess(string executable, bool persistent, string[] extraArguments)
    {
        _executable = executable;
        _persistent = persistent;
        _extraArguments = extraArguments;
        DataDirectory = Directory.CreateTempSubdirectory("onlinerl-redis-").FullName;
        Port = FreeLoopbackPort();
    }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The server's address as the configuration writes it: <c>redis://127.0.0.1:PORT</c>.</summary>
    public string Address => $"{OnlineRl.Messaging.RedisAddress.Scheme}127.0.0.1:{Port}";

    /// <summary>Where the server keeps its append-only file and log (<c>redis.log</c>).</summary>
    public string DataDirectory { get; }

    /// <summary>A Redis executable (redis-server, redis-benchmark, ...) on PATH or in /usr/bin, or null when there is none.</summary>
    /// <param name="name">The executable's name.</param>
    public static string? FindExecutable(string name = "redis-server") =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    /// <summary>Starts a server and waits until it answers PING.</summary>
    /// <param name="persistent">
    /// True: append-only file with an fsync per write, so a restart (even after <see cref="Kill"/>) loses
    /// nothing acknowledged. False: no persistence at all (benchmarks of raw speed).
    /// </param>
    /// <param name="extraArguments">More redis-server options, e.g. <c>--requirepass</c>, <c>--user</c> (ACL) or
    /// <c>--tls-port</c> with its certificates. The server counts as started once its plain port answers, also
    /// with "authentication required".</param>
    /// <exception cref="FileNotFoundException">redis-server is not installed.</exception>
    public static RedisServerProcess Start(bool persistent = true, params string[] extraArguments)
    {
        var executable = FindExecutable() ?? throw new FileNotFoundException(
            "redis-server is not installed (Debian: apt-get install redis-server)", "redis-server");
        var server = new RedisServerProcess(executable, persistent, extraArguments);
        try
        {
            server.Launch();
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>Stops the server cleanly (SHUTDOWN writes out its data) if it runs, then starts it again on the same port with the same data.</summary>
    public void Restart()
    {
        if (_process is { HasExited: false } process)
        {
            SendCommand("SHUTDOWN");
            if (!process.WaitForExit(TimeSpan.FromSeconds(10))) process.Kill();
            process.WaitForExit();
        }
        Launch();
    }

    /// <summary>Kills the server at once (SIGKILL), as a crash would; <see cref="Restart"/> brings it back.</summary>
    public void Kill()
    {
        if (_process is not { HasExited: false } process) return;
        process.Kill();
        process.WaitForExit();
    }

    /// <summary>Kills the server and deletes its data directory.</summary>
    public void Dispose()
    {
        Kill();
        _process?.Dispose();
        _process = null;
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A temporary directory left behind is harmless.
        }
    }

    private void Launch()
    {
        _process?.Dispose();
        var info = new ProcessStartInfo(_executable) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[]
                 {
                     "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                     "--dir", DataDirectory, "--logfile", "redis.log", "--save", "", "--daemonize", "no",
                     "--appendonly", _persistent ? "yes" : "no", "--appendfsync", "always",
                 }.Concat(_extraArguments))
            info.ArgumentList.Add(argument);
        _process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {_executable}");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        // A server with a password answers "-NOAUTH Authentication required." (ACL: "-NOAUTH ..." too): it is up.
        while (SendCommand("PING") is not { } reply || !(reply == "+PONG" || reply.StartsWith("-NOAUTH", StringComparison.Ordinal)))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"redis-server on port {Port} did not start: {LogTail()}");
            Thread.Sleep(20);
        }
    }

    private string LogTail()
    {
        var log = Path.Combine(DataDirectory, "redis.log");
        return File.Exists(log) ? string.Join(" | ", File.ReadLines(log).TakeLast(5)) : "(no log)";
    }

    /// <summary>Sends one inline command; returns the first reply line, or null when nothing answers.</summary>
    private string? SendCommand(string command)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, Port);
            using var stream = client.GetStream();
            stream.ReadTimeout = 2000;
            stream.Write(Encoding.ASCII.GetBytes(command + "\r\n"));
            using var reader = new StreamReader(stream, Encoding.ASCII);
            return reader.ReadLine();
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return null;
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
