using OnlineRl.Pipeline;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace OnlineRl.Deploy.Tests;

/// <summary>A fact that needs util-linux's <c>script</c> (a pseudo-terminal); skipped with the reason where it is missing.</summary>
public sealed class TerminalFactAttribute : FactAttribute
{
    public const string Script = "/usr/bin/script";

    public TerminalFactAttribute()
    {
        if (!File.Exists(Script)) Skip = $"{Script} is missing (Debian's bsdutils package): no pseudo-terminal to run the CLI in";
    }
}

// The main job as a user sees it: the real `onlinerl run` on the shipped config (made tiny by flags), its standard
// output and error in one stream, once through a pipe (as in CI logs) and once on a pseudo-terminal.
public sealed class CliOutputTests
{
    private static readonly string[] TinyRun =
    [
        "--service.metrics_port", "0", "--threads", "1", "--sft.steps", "12", "--train.steps", "12", "--train.eval_every", "6",
        "--model.layers", "1", "--model.hidden_size", "32", "--model.heads", "2", "--model.kv_heads", "2", "--model.intermediate_size", "64",
        "--task.eval_size", "8",
    ];

    // What the OpenTelemetry SDK's warnings looked like on the console ("OpenTelemetry-Sdk warning (MetricInstrumentIgnored):
    // ... Meter 'System.Runtime' will be ignored"), and how the metrics endpoint passes any warning on ("metrics: ...").
    private static bool IsSdkWarning(string line) =>
        line.Contains("OpenTelemetry", StringComparison.Ordinal) || line.Contains("will be ignored", StringComparison.Ordinal) ||
        line.Contains("MetricInstrument", StringComparison.Ordinal) ||
        (line.Contains("metrics: ", StringComparison.Ordinal) && !line.Contains("metrics: http://localhost:", StringComparison.Ordinal));

    [Fact]
    public async Task The_main_jobs_first_20_lines_hold_no_sdk_warning_and_progress_is_plain_lines_in_a_pipe()
    {
        var output = TemporaryDirectory();
        try
        {
            var (exitCode, text) = await RunAsync($"exec {MainJob(output)} 2>&1");
            Assert.True(exitCode == 0, $"exit code {exitCode}:\n{text}");
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var first = lines.Take(20).ToList();
            Assert.True(!first.Any(IsSdkWarning), "SDK noise in the first 20 lines:\n" + string.Join("\n", first));
            Assert.Matches(@"^\[ +\d+\.\ds\] metrics: http://localhost:\d+/metrics", lines[0]);
            // Plain lines: nothing redrawn, no terminal control sequences.
            Assert.DoesNotContain('\r', text);
            Assert.DoesNotContain('\u001b', text);
            Assert.Contains(lines, l => Regex.IsMatch(l, @"\] SFT step 1/12  [0-9.]+(/s|s each)  ETA \d+s  loss \d"));
            Assert.Contains(lines, l => Regex.IsMatch(l, @"\] SFT step 12/12  [0-9.]+(/s|s each)  loss \d"));
            Assert.Contains(lines, l => Regex.IsMatch(l, @"\] RL step 1/12  [0-9.]+(/s|s each)  ETA \d+s  reward "));
            // The steps with an evaluation stay as lines; the last step closes the progress.
            Assert.Contains(lines, l => Regex.IsMatch(l, @"\] RL step 6/12 .* held-out \d"));
            Assert.Contains(lines, l => Regex.IsMatch(l, @"\] RL step 12/12 .* held-out \d"));
            Assert.True(lines.Length < 30, $"{lines.Length} lines for 12 SFT and 12 RL steps: plain progress is not throttled\n{text}");
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [TerminalFact]
    public async Task On_a_terminal_the_progress_line_is_redrawn_in_place_within_the_width()
    {
        var output = TemporaryDirectory();
        try
        {
            // A pseudo-terminal 90 columns wide; script copies everything the terminal received.
            var command = $"stty cols 90 rows 40; exec {MainJob(output)}";
            var (exitCode, text) = await RunAsync($"exec {TerminalFactAttribute.Script} -qfec {Quote(command)} /dev/null");
            Assert.True(exitCode == 0, $"exit code {exitCode}:\n{text}");
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(!lines.Take(20).Any(IsSdkWarning), "SDK noise in the first 20 lines:\n" + string.Join("\n", lines.Take(20)));
            // Each redraw returns to the start of the line and erases it, then draws the new state.
            var drawn = text.Split("\r\u001b[K").Skip(1).Select(d => d.Split('\r', '\n')[0]).ToList();
            Assert.Equal(12, drawn.Count(d => Regex.IsMatch(d, @"^\[ +\d+\.\ds\] SFT step \d+/12 ")));
            Assert.True(drawn.Count(d => Regex.IsMatch(d, @"^\[ +\d+\.\ds\] RL step \d+/12 ")) >= 12, "not every RL step was drawn:\n" + text);
            Assert.Contains(drawn, d => Regex.IsMatch(d, @"RL step 1/12  [0-9.]+(/s|s each)  ETA \d+s"));
            // Cut to the width (a wrapped line cannot be redrawn); the steps with an evaluation stay as whole lines.
            Assert.All(drawn.Where(d => d.Contains(" step ", StringComparison.Ordinal) && !d.Contains("held-out", StringComparison.Ordinal)),
                d => Assert.True(d.Length < 90, $"{d.Length} columns: {d}"));
            // Lines printed between redraws are whole lines (the steps with an evaluation, the summary).
            Assert.Contains(lines, l => l.Contains("held-out accuracy after 12 steps", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public async Task Sigterm_during_the_sft_warm_start_stops_the_main_job_at_once()
    {
        var output = TemporaryDirectory();
        var dll = KafkaMock.FindCli(out var reason) ?? throw new InvalidOperationException(reason);
        var config = RepoPaths.Of("services", "OnlineRl.Cli", "configs", "grpo-addition.yaml");
        var longSft = TinyRun.Select((argument, i) => i > 0 && TinyRun[i - 1] == "--sft.steps" ? "100000" : argument);
        var arguments = new[] { "run", "--config", config }.Concat(longSft).Concat(["--output_dir", output]);
        var run = ServiceProcess.Start("run", dll, arguments, Path.Combine(output, "run.log"));
        try
        {
            await run.WaitForLineAsync(l => l.Contains("SFT step 1/100000", StringComparison.Ordinal), TimeSpan.FromMinutes(2));
            // Far from the end of SFT: without the signal this run would take hours.
            Assert.True(await run.TerminateAsync(TimeSpan.FromSeconds(30)), $"SIGTERM did not stop the run within 30 s:\n{run.Tail()}");
            Assert.Equal(130, run.ExitCode);
            Assert.Contains(run.Lines, l => l.Contains("interrupted", StringComparison.Ordinal));
        }
        finally
        {
            run.Dispose();
            Directory.Delete(output, recursive: true);
        }
    }

    [Theory]
    [InlineData("soak", "--minutes M (20)")]
    [InlineData("generator", "One service of a run as its own process")]
    [InlineData("ledger", "Check a run's per-sample ledger")]
    public async Task A_commands_help_prints_its_usage_and_succeeds(string command, string expected)
    {
        var dll = KafkaMock.FindCli(out var reason) ?? throw new InvalidOperationException(reason);
        var (exitCode, text) = await RunAsync($"exec dotnet {Quote(dll)} {command} --help 2>&1");
        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{text}");
        Assert.StartsWith($"Usage: onlinerl {command} [options]", text, StringComparison.Ordinal);
        Assert.Contains(expected, text, StringComparison.Ordinal);
        // Only that command's entry, not the whole list.
        Assert.DoesNotContain("kafka-mock", text.Replace(command, "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("frobnicate --help")]
    public async Task An_unknown_command_fails_with_or_without_help(string arguments)
    {
        var dll = KafkaMock.FindCli(out var reason) ?? throw new InvalidOperationException(reason);
        var (exitCode, text) = await RunAsync($"exec dotnet {Quote(dll)} {arguments} 2>&1");
        Assert.True(exitCode == 2, $"exit code {exitCode}:\n{text}");
        Assert.StartsWith("error: unknown command 'frobnicate'", text, StringComparison.Ordinal);
        Assert.Contains("Usage: onlinerl <command>", text, StringComparison.Ordinal);
    }

    private static string MainJob(string output)
    {
        var dll = KafkaMock.FindCli(out var reason) ?? throw new InvalidOperationException(reason);
        var config = RepoPaths.Of("services", "OnlineRl.Cli", "configs", "grpo-addition.yaml");
        return string.Join(' ', new[] { "dotnet", dll, "run", "--config", config }.Concat(TinyRun).Concat(["--output_dir", output]).Select(Quote));
    }

    private static string TemporaryDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), $"onlinerl-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    private static string Quote(string argument) => "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>Runs a bash command line; returns its exit code and everything it wrote to standard output.</summary>
    private static async Task<(int ExitCode, string Output)> RunAsync(string commandLine)
    {
        var info = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(commandLine);
        info.Environment.Remove("TERM"); // the CLI must pick its mode from the output itself
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start bash");
        process.StandardInput.Close();
        var text = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{commandLine}' did not finish in 3 minutes:\n{await text}");
        }
        return (process.ExitCode, await text);
    }
}
