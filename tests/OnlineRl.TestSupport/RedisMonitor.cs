using System.Net.Sockets;
using System.Text;

namespace OnlineRl.TestSupport;

/// <summary>
/// Watches every command a redis-server executes (its MONITOR stream, Lua scripts' commands included) and kills
/// the server with SIGKILL the moment a command matches: a crash at an exact point of a distributed run (half way
/// through a weight publication, in the middle of a learner's acknowledgements) that no timer could hit.
/// </summary>
public sealed class RedisMonitor : IDisposable
{
    private readonly TcpClient client = new();
    private readonly List<string> seen = [];
    private readonly Task<string?> watching;

    private RedisMonitor(RedisServer server, Func<string, bool> killWhen)
    {
        client.Connect("127.0.0.1", server.Port);
        var stream = client.GetStream();
        stream.Write("MONITOR\r\n"u8);
        var reader = new StreamReader(stream, Encoding.Latin1);
        if (reader.ReadLine() != "+OK") throw new InvalidOperationException("redis-server refused MONITOR");
        watching = Task.Run(() =>
        {
            try
            {
                while (reader.ReadLine() is { } line)
                {
                    // Only the command and its short arguments: weight chunks are escaped binary of several hundred KB.
                    var command = line.Length > 512 ? line[..512] : line;
                    lock (seen) seen.Add(command);
                    if (!killWhen(command)) continue;
                    server.Kill();
                    return command;
                }
            }
            catch (IOException)
            {
            }
            return null;
        });
    }

    /// <summary>Starts watching <paramref name="server"/>; kills it at the first command line for which <paramref name="killWhen"/> is true.</summary>
    /// <param name="server">The server.</param>
    /// <param name="killWhen">Sees each MONITOR line (its first 512 characters), e.g. <c>1700000000.1 [0 lua] "XACK" "stream" "group" "1-0"</c>.</param>
    public static RedisMonitor KillWhen(RedisServer server, Func<string, bool> killWhen) => new(server, killWhen);

    /// <summary>The line that made it kill the server, once it did (null: the stream ended first).</summary>
    public Task<string?> Killed => watching;

    /// <summary>Every command line seen so far (first 512 characters each).</summary>
    public IReadOnlyList<string> Seen
    {
        get
        {
            lock (seen) return seen.ToArray();
        }
    }

    /// <summary>Stops watching.</summary>
    public void Dispose() => client.Dispose();
}
