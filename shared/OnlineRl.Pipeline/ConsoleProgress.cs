using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace OnlineRl.Pipeline;

/// <summary>
/// The console output of a long job: timestamped lines, plus the progress of the counted work in hand (SFT steps,
/// RL steps, benchmark rows) as "label done/total, rate, ETA, detail". On a terminal the progress is one line under
/// the others, redrawn in place; elsewhere (a pipe, a file, a CI log) it comes as plain lines: the first step, the
/// last, and in between at most one per <c>plainInterval</c>, so logs stay short and readable.
/// </summary>
/// <remarks>Thread-safe: the learner reports from its own thread while other workers print lines.</remarks>
public sealed class ConsoleProgress
{
    // Carriage return, then "erase to the end of the line" (ANSI/VT100 EL): the next text replaces the live line.
    private const string ClearLine = "\r\u001b[K";

    private readonly TextWriter output;
    private readonly int width;
    private readonly TimeSpan plainInterval;
    private readonly Func<TimeSpan> clock;
    private readonly object gate = new();
    private string label = "";
    private long total;
    private TimeSpan? timeLimit;
    private TimeSpan taskStart;
    private TimeSpan lastPlainLine = TimeSpan.MinValue;
    private string live = "";
    private string unprinted = "";

    /// <summary>Creates the output.</summary>
    /// <param name="output">Where everything is written.</param>
    /// <param name="live">Redraw the progress line in place (a terminal); false: plain lines.</param>
    /// <param name="width">Terminal columns: a live line is cut to fit, since a wrapped line cannot be redrawn.</param>
    /// <param name="plainInterval">Least time between two plain progress lines (default 10 s).</param>
    /// <param name="clock">Time since the job started (default: a stopwatch started now); timestamps and rates use it.</param>
    public ConsoleProgress(TextWriter output, bool live, int width = 120, TimeSpan? plainInterval = null, Func<TimeSpan>? clock = null)
    {
        this.output = output;
        Live = live;
        this.width = Math.Max(20, width);
        this.plainInterval = plainInterval ?? TimeSpan.FromSeconds(10);
        if (clock is null)
        {
            var stopwatch = Stopwatch.StartNew();
            clock = () => stopwatch.Elapsed;
        }
        this.clock = clock;
    }

    /// <summary>
    /// Progress on standard output: live when it is a terminal (and TERM is not "dumb"), plain lines when it is
    /// redirected; the live line fits the terminal's width.
    /// </summary>
    public static ConsoleProgress ForConsole()
    {
        var live = !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is not "dumb";
        var width = 120;
        if (live)
        {
            try { width = Console.WindowWidth > 0 ? Console.WindowWidth : width; }
            catch (IOException) { }
        }
        return new ConsoleProgress(Console.Out, live, width);
    }

    /// <summary>True when progress is redrawn in place.</summary>
    public bool Live { get; }

    /// <summary>Writes a permanent line, "[  12.3s] text" (above the live progress line, which is redrawn under it).</summary>
    public void Line(string text)
    {
        lock (gate)
        {
            var now = clock();
            if (Live && live.Length > 0) output.Write(ClearLine);
            output.Write(Stamp(now, text) + "\n");
            if (Live && live.Length > 0) output.Write(live);
            lastPlainLine = now;
            output.Flush();
        }
    }

    /// <summary>Starts counted work; rate and ETA are measured from now.</summary>
    /// <param name="name">What is counted, e.g. "SFT step" or "RL step".</param>
    /// <param name="count">How many there will be; 0 or less when unknown (no total, no ETA).</param>
    /// <param name="limit">A time limit that may end the work first (its remainder caps the ETA).</param>
    public void Begin(string name, long count, TimeSpan? limit = null)
    {
        lock (gate)
        {
            if (Live && live.Length > 0) output.Write(ClearLine);
            live = "";
            unprinted = "";
            label = name;
            total = count;
            timeLimit = limit;
            taskStart = clock();
            lastPlainLine = TimeSpan.MinValue;
        }
    }

    /// <summary>Reports that <paramref name="done"/> units of the current work are finished.</summary>
    /// <param name="done">Units finished so far.</param>
    /// <param name="detail">What to show after the rate and ETA (e.g. the loss).</param>
    /// <param name="keep">Keep this report as a whole line in both modes (e.g. a step with an evaluation).</param>
    public void Report(long done, string detail = "", bool keep = false)
    {
        lock (gate)
        {
            var now = clock();
            var text = Stamp(now, Describe(done, now - taskStart, detail));
            if (keep)
            {
                output.Write((Live && live.Length > 0 ? ClearLine : "") + text + "\n");
                live = "";
                unprinted = "";
                lastPlainLine = now;
            }
            else if (Live)
            {
                live = Fit(text);
                output.Write(ClearLine + live);
            }
            else if (done <= 1 || done == total || now - lastPlainLine >= plainInterval)
            {
                output.Write(text + "\n");
                lastPlainLine = now;
                unprinted = "";
            }
            else
            {
                unprinted = text;
            }
            output.Flush();
        }
    }

    /// <summary>Ends the current work; its last report stays as a line (live: the live line; plain: printed if it was skipped).</summary>
    public void End()
    {
        lock (gate)
        {
            if (Live && live.Length > 0) output.Write("\n");
            else if (!Live && unprinted.Length > 0) output.Write(unprinted + "\n");
            live = "";
            unprinted = "";
            output.Flush();
        }
    }

    /// <summary>"label done/total  rate  ETA  detail" for <paramref name="done"/> units in <paramref name="elapsed"/>.</summary>
    private string Describe(long done, TimeSpan elapsed, string detail)
    {
        var text = new StringBuilder(label).Append(' ').Append(done.ToString(CultureInfo.InvariantCulture));
        if (total > 0) text.Append('/').Append(total.ToString(CultureInfo.InvariantCulture));
        var seconds = elapsed.TotalSeconds;
        if (done > 0 && seconds > 0)
        {
            var rate = done / seconds;
            text.Append("  ").Append(rate >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{rate:F1}/s") : string.Create(CultureInfo.InvariantCulture, $"{1 / rate:F1}s each"));
            TimeSpan? eta = total > 0 ? TimeSpan.FromSeconds(Math.Max(0, total - done) / rate) : null;
            if (timeLimit is { } limit)
            {
                var left = limit - elapsed;
                if (left < TimeSpan.Zero) left = TimeSpan.Zero;
                eta = eta is { } e && e < left ? e : left;
            }
            if (eta is { } remaining && done != total) text.Append("  ETA ").Append(Duration(remaining));
        }
        if (detail.Length > 0) text.Append("  ").Append(detail);
        return text.ToString();
    }

    /// <summary>A duration as "45s", "2m08s" or "1h02m".</summary>
    public static string Duration(TimeSpan span)
    {
        var seconds = (long)Math.Ceiling(span.TotalSeconds);
        return seconds switch
        {
            < 60 => $"{seconds}s",
            < 3600 => $"{seconds / 60}m{seconds % 60:00}s",
            _ => $"{seconds / 3600}h{seconds / 60 % 60:00}m",
        };
    }

    private static string Stamp(TimeSpan now, string text) => string.Create(CultureInfo.InvariantCulture, $"[{now.TotalSeconds,6:F1}s] {text}");

    // One column is kept free: writing into the last column makes some terminals wrap before the redraw.
    private string Fit(string text) => text.Length < width ? text : text[..(width - 2)] + "…";
}
