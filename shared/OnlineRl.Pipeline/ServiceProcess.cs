using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace OnlineRl.Pipeline;

/// <summary>
/// One <c>onlinerl</c> command (a service of a distributed run) in its own OS process, for `onlinerl soak` and the
/// end-to-end and fault tests: its output is kept (and mirrored to a log file), it can be stopped gracefully
/// (SIGTERM) or killed at once (SIGKILL, like <c>kill -9</c>).
/// </summary>
public sealed partial class ServiceProcess : IDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> lines = new();
    private readonly StreamWriter log;
    private readonly TaskCompletionSource exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource outputClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int openStreams = 2;

    private ServiceProcess(string name, Process process, StreamWriter log)
    {
        Name = name;
        this.process = process;
        this.log = log;
    }

    /// <summary>A short name for messages (e.g. "generator-1").</summary>
    public string Name { get; }

    /// <summary>The operating system's process id (for /proc: memory and open handles).</summary>
    public int Id => process.Id;

    /// <summary>Every line the process printed so far (stdout and stderr).</summary>
    public IReadOnlyList<string> Lines => lines.ToArray();

    /// <summary>Whether the process has ended and everything it printed has been read.</summary>
    public bool HasExited => exited.Task.IsCompleted;

    /// <summary>The exit code (after the process ended).</summary>
    public int ExitCode => process.ExitCode;

    /// <summary>
    /// Starts <c>dotnet ONLINERL_DLL ARGS</c> with extra environment variables (and MALLOC_ARENA_MAX=2 unless this
    /// process has one); output goes to <paramref name="logFile"/> too.
    /// </summary>
    public static ServiceProcess Start(string name, string onlinerlDll, IEnumerable<string> arguments, string logFile,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(onlinerlDll);
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        // As the Docker image does: glibc reads the arena limit only at start-up (see MallocArenas).
        if (Environment.GetEnvironmentVariable(MallocArenas.EnvironmentVariable) is null)
            info.Environment[MallocArenas.EnvironmentVariable] = MallocArenas.DefaultLimit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logFile))!);
        var log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var service = new ServiceProcess(name, process, log);
        process.OutputDataReceived += (_, e) => service.Add(e.Data);
        process.ErrorDataReceived += (_, e) => service.Add(e.Data);
        process.Exited += (_, _) => _ = service.MarkExitedWhenOutputEndsAsync();
        if (!process.Start()) throw new InvalidOperationException($"could not start {name}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return service;
    }

    // The Exited event can come before the last lines have been read from the pipes: the process counts as
    // ended once both streams are closed, or a few seconds after the exit if something else still holds them.
    private async Task MarkExitedWhenOutputEndsAsync()
    {
        await Task.WhenAny(outputClosed.Task, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        exited.TrySetResult();
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            if (Interlocked.Decrement(ref openStreams) == 0) outputClosed.TrySetResult();
            return;
        }
        lines.Enqueue(line);
        lock (log) log.WriteLine(line);
    }

    /// <summary>Waits until a printed line satisfies <paramref name="match"/>; returns it.</summary>
    /// <exception cref="TimeoutException">No such line within <paramref name="timeout"/> (the message holds the last lines).</exception>
    /// <exception cref="InvalidOperationException">The process ended first.</exception>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var found = lines.FirstOrDefault(match);
            if (found is not null) return found;
            if (HasExited)
            {
                await Task.Delay(200).ConfigureAwait(false); // the last lines may still be arriving
                found = lines.FirstOrDefault(match);
                if (found is not null) return found;
                throw new InvalidOperationException($"{Name} exited with {ExitCode} before printing the expected line:\n{Tail()}");
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Name}: no expected line within {timeout.TotalSeconds:F0} s:\n{Tail()}");
            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for the process to end; false on timeout.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout) =>
        await Task.WhenAny(exited.Task, Task.Delay(timeout)).ConfigureAwait(false) == exited.Task;

    /// <summary>Asks the process to stop (SIGTERM) and waits; kills it if it has not ended after <paramref name="grace"/>.</summary>
    /// <returns>True when it ended by itself.</returns>
    public async Task<bool> TerminateAsync(TimeSpan grace)
    {
        if (HasExited) return true;
        _ = SendSignal(process.Id, SigTerm);
        if (await WaitForExitAsync(grace).ConfigureAwait(false)) return true;
        Kill();
        return false;
    }

    /// <summary>Kills the process at once, like <c>kill -9</c>: no cleanup runs in it.</summary>
    public void Kill()
    {
        if (HasExited) return;
        _ = SendSignal(process.Id, SigKill);
        process.WaitForExit(10_000);
    }

    /// <summary>The first printed exception (its line and the next few), or null: the tail alone shows only its stack's end.</summary>
    public string? FirstException(int count = 8)
    {
        var all = Lines;
        var start = all.ToList().FindIndex(l => l.Contains("Exception", StringComparison.Ordinal));
        return start < 0 ? null : string.Join('\n', all.Skip(start).Take(count).Select(l => $"  {Name}| {l}"));
    }

    /// <summary>The last printed lines, for failure messages.</summary>
    public string Tail(int count = 25) => string.Join('\n', lines.TakeLast(count).Select(l => $"  {Name}| {l}"));

    /// <summary>Kills the process if it still runs and closes the log.</summary>
    public void Dispose()
    {
        try
        {
            if (!HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }
        process.Dispose();
        lock (log) log.Dispose();
    }

    private const int SigTerm = 15;
    private const int SigKill = 9;

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int SendSignal(int pid, int signal);
}
