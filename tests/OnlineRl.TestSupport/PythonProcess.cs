using System.Diagnostics;

namespace OnlineRl.TestSupport;

/// <summary>
/// Runs Debian's /usr/bin/python3 (whose torch is the same libtorch as our binding) for golden values and
/// independent references. The python3 first on PATH may be another interpreter without torch.
/// </summary>
public static class PythonProcess
{
    /// <summary>The interpreter with torch.</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>Runs the interpreter; returns the exit code (-1 when it is missing or timed out) and stdout + stderr.</summary>
    public static (int Code, string Output) Run(IEnumerable<string> arguments, TimeSpan timeout)
    {
        var (code, stdout, stderr) = RunSeparated(arguments, timeout);
        return (code, stdout + stderr);
    }

    /// <summary>Like <see cref="Run"/>, with stdout and stderr apart.</summary>
    public static (int Code, string Stdout, string Stderr) RunSeparated(IEnumerable<string> arguments, TimeSpan timeout)
    {
        if (!File.Exists(Python)) return (-1, "", $"{Python} does not exist (install python3-torch; ./test.sh does)");
        var info = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + Python);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            return (-1, "", $"timed out after {timeout.TotalSeconds} s");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
