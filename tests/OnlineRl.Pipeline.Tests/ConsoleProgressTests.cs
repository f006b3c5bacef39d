namespace OnlineRl.Pipeline.Tests;

// The progress output in both modes, on a controlled clock: on a terminal one line redrawn in place under the
// permanent lines; in a pipe or CI log plain lines (first, last, and at most one per interval in between).
// The real CLI in both modes (a pseudo-terminal and a pipe) is tested in OnlineRl.Deploy.Tests (CliOutputTests).
public class ConsoleProgressTests
{
    private const string Escape = "\u001b";

    private sealed class FakeClock
    {
        public TimeSpan Now { get; set; }
        public TimeSpan Read() => Now;
    }

    [Fact]
    public void Plain_mode_prints_first_last_and_one_line_per_interval_with_rate_and_eta()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, live: false, plainInterval: TimeSpan.FromSeconds(10), clock: clock.Read);
        progress.Line("starting");
        progress.Begin("RL step", 100);
        for (var step = 1; step <= 100; step++)
        {
            clock.Now += TimeSpan.FromSeconds(0.5); // 2 steps/s
            progress.Report(step, $"loss {step}");
        }
        progress.End();
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.DoesNotContain('\r', output.ToString());
        Assert.DoesNotContain(Escape, output.ToString());
        Assert.Equal("[   0.0s] starting", lines[0]);
        // 50 s of work: step 1, then every 10 s (steps 21, 41, 61, 81), then the last.
        Assert.Equal(
        [
            "[   0.5s] RL step 1/100  2.0/s  ETA 50s  loss 1",
            "[  10.5s] RL step 21/100  2.0/s  ETA 40s  loss 21",
            "[  20.5s] RL step 41/100  2.0/s  ETA 30s  loss 41",
            "[  30.5s] RL step 61/100  2.0/s  ETA 20s  loss 61",
            "[  40.5s] RL step 81/100  2.0/s  ETA 10s  loss 81",
            "[  50.0s] RL step 100/100  2.0/s  loss 100",
        ], lines[1..]);
    }

    [Fact]
    public void Plain_mode_keeps_marked_steps_and_prints_a_skipped_last_report_at_the_end()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, live: false, plainInterval: TimeSpan.FromSeconds(10), clock: clock.Read);
        progress.Begin("RL step", 0, limit: TimeSpan.FromMinutes(2)); // no step count: the time limit ends the work
        for (var step = 1; step <= 7; step++)
        {
            clock.Now += TimeSpan.FromSeconds(1);
            progress.Report(step, keep: step == 5);
        }
        progress.End();
        Assert.Equal(
        [
            "[   1.0s] RL step 1  1.0/s  ETA 1m59s",
            "[   5.0s] RL step 5  1.0/s  ETA 1m55s",
            "[   7.0s] RL step 7  1.0/s  ETA 1m53s",
        ], output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Live_mode_redraws_one_line_in_place_under_the_permanent_lines()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, live: true, width: 60, clock: clock.Read);
        progress.Begin("SFT step", 4);
        for (var step = 1; step <= 4; step++)
        {
            clock.Now += TimeSpan.FromSeconds(2);
            progress.Report(step, $"loss {4 - step}");
            if (step == 2) progress.Line("a line while the work goes on");
        }
        progress.End();
        var text = output.ToString();

        // Every redraw returns to the line's start and erases it; the permanent line clears the live one, is written
        // whole, and the live line is drawn again under it; at the end the last state stays as a line.
        const string redraw = "\r\u001b[K";
        Assert.Equal(
            redraw + "[   2.0s] SFT step 1/4  2.0s each  ETA 6s  loss 3" +
            redraw + "[   4.0s] SFT step 2/4  2.0s each  ETA 4s  loss 2" +
            redraw + "[   4.0s] a line while the work goes on\n" + "[   4.0s] SFT step 2/4  2.0s each  ETA 4s  loss 2" +
            redraw + "[   6.0s] SFT step 3/4  2.0s each  ETA 2s  loss 1" +
            redraw + "[   8.0s] SFT step 4/4  2.0s each  loss 0" + "\n",
            text);
    }

    [Fact]
    public void Live_lines_are_cut_to_the_terminal_width_and_kept_steps_are_whole()
    {
        var clock = new FakeClock();
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, live: true, width: 40, clock: clock.Read);
        progress.Begin("RL step", 10);
        clock.Now = TimeSpan.FromSeconds(1);
        var detail = new string('x', 80);
        progress.Report(1, detail);
        var drawn = output.ToString().Split("\r\u001b[K")[^1];
        Assert.Equal(39, drawn.Length); // never the last column: a wrapped line cannot be redrawn in place
        Assert.EndsWith("…", drawn);
        progress.Report(2, detail, keep: true);
        Assert.EndsWith("RL step 2/10  2.0/s  ETA 4s  " + detail + "\n", output.ToString());
        progress.End(); // the kept step was the last state: nothing more to write
        Assert.EndsWith(detail + "\n", output.ToString());
    }

    [Theory]
    [InlineData(0.2, "1s")]
    [InlineData(45, "45s")]
    [InlineData(128, "2m08s")]
    [InlineData(3720, "1h02m")]
    public void Durations_read_as_seconds_minutes_or_hours(double seconds, string expected) =>
        Assert.Equal(expected, ConsoleProgress.Duration(TimeSpan.FromSeconds(seconds)));
}
