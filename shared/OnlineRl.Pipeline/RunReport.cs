using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace OnlineRl.Pipeline;

/// <summary>
/// The end-of-run report: metrics.csv (one row per learner step, every metric a column), reward.svg (reward
/// and held-out accuracy against steps), report.md summarising both, and report.html: one self-contained page
/// (inline SVG charts of reward, held-out accuracy, KL, loss, policy lag and throughput; the summary, the step
/// table and the configuration) that any browser opens without a network or a script.
/// </summary>
public static class RunReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Writes the report files into the run's output folder.</summary>
    public static void Write(RunSummary summary, RunConfig config)
    {
        File.WriteAllText(Path.Combine(summary.OutputDir, "metrics.csv"), Csv(summary.Steps));
        File.WriteAllText(Path.Combine(summary.OutputDir, "reward.svg"), Chart(summary));
        File.WriteAllText(Path.Combine(summary.OutputDir, "report.md"), Markdown(summary, config));
        File.WriteAllText(Path.Combine(summary.OutputDir, "report.html"), Html(summary, config));
    }

    /// <summary>The metrics table as CSV: the step, then the columns of <see cref="StepValues"/> (empty where a step has no value).</summary>
    public static string Csv(IReadOnlyList<StepReport> steps)
    {
        var columns = FixedColumns.Concat(steps.SelectMany(s => s.Metrics.Keys).Distinct().Order(StringComparer.Ordinal)).ToList();
        var text = new StringBuilder();
        text.Append("step");
        foreach (var column in columns) text.Append(',').Append(column);
        text.Append('\n');
        foreach (var s in steps)
        {
            var values = StepValues(s).ToDictionary(v => v.Column, v => v.Value);
            text.Append(s.Step.ToString(Invariant));
            foreach (var column in columns) text.Append(',').Append(values.TryGetValue(column, out var v) ? Format(column, v) : "");
            text.Append('\n');
        }
        return text.ToString();
    }

    private static readonly string[] FixedColumns = ["elapsed_s", "policy_version", "policy_lag", "dropped_stale", "duplicates", "skipped", "heldout_accuracy"];

    /// <summary>
    /// A step's values as metrics.csv columns: elapsed_s, policy_version, policy_lag, dropped_stale, duplicates, skipped
    /// (1 or 0), heldout_accuracy (only when evaluated at this step), then the learner's metrics by name. metrics.csv and
    /// the TensorBoard events (<see cref="TensorBoardLog"/>) are both written from this list, so they cannot disagree.
    /// </summary>
    public static IEnumerable<(string Column, double Value)> StepValues(StepReport s)
    {
        yield return ("elapsed_s", s.ElapsedSeconds);
        yield return ("policy_version", s.PolicyVersion);
        yield return ("policy_lag", s.PolicyLagMean);
        yield return ("dropped_stale", s.DroppedStale);
        yield return ("duplicates", s.Duplicates);
        yield return ("skipped", s.Skipped ? 1 : 0);
        if (s.HeldOutAccuracy is { } accuracy) yield return ("heldout_accuracy", accuracy);
        foreach (var (key, value) in s.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal)) yield return (key, value);
    }

    private static string Format(string column, double value) => column switch
    {
        "elapsed_s" => value.ToString("F2", Invariant),
        "policy_lag" => value.ToString("F3", Invariant),
        "heldout_accuracy" => value.ToString("F4", Invariant),
        "policy_version" or "dropped_stale" or "duplicates" or "skipped" => value.ToString("F0", Invariant),
        _ => value.ToString("G6", Invariant),
    };

    private static string Markdown(RunSummary summary, RunConfig config)
    {
        var text = new StringBuilder();
        text.AppendLine($"# OnlineRl run `{config.RunId}`").AppendLine();
        foreach (var fact in Facts(summary, config)) text.AppendLine("- " + fact);
        text.AppendLine().AppendLine("![reward and held-out accuracy](reward.svg)").AppendLine();
        text.AppendLine("| " + string.Join(" | ", TableHeader) + " |");
        text.AppendLine("|" + string.Concat(TableHeader.Select(_ => "---:|")));
        foreach (var row in TableRows(summary.Steps)) text.AppendLine("| " + string.Join(" | ", row) + " |");
        text.AppendLine().AppendLine("Every metric of every step: `metrics.csv`. Charts and the configuration: `report.html`. Final weights: `checkpoint/`.");
        return text.ToString();
    }

    /// <summary>
    /// The report as one HTML page with everything inline. Its Content-Security-Policy forbids loading anything
    /// (scripts, styles, images, fonts from anywhere), so the page stays self-contained: a browser would refuse,
    /// and report, any external resource added later.
    /// </summary>
    public static string Html(RunSummary summary, RunConfig config)
    {
        string E(string text) => WebUtility.HtmlEncode(text);
        var html = new StringBuilder();
        html.AppendLine("<!DOCTYPE html>");
        html.AppendLine("<html lang=\"en\">");
        html.AppendLine("<head>");
        html.AppendLine("<meta charset=\"utf-8\">");
        html.AppendLine("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
        html.AppendLine("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        html.AppendLine($"<title>OnlineRl run {E(config.RunId)}</title>");
        html.AppendLine("""
            <style>
            body { font-family: sans-serif; margin: 24px auto; max-width: 1500px; padding: 0 16px; color: #222; }
            h1 code, li code { font-size: 0.95em; }
            .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(600px, 1fr)); gap: 12px; }
            figure { margin: 0; border: 1px solid #ddd; border-radius: 4px; padding: 4px; }
            table { border-collapse: collapse; }
            th, td { border: 1px solid #ddd; padding: 3px 10px; text-align: right; }
            th { background: #f4f4f4; }
            #config { background: #f6f6f6; padding: 12px; columns: 3 320px; font-size: 13px; }
            </style>
            """);
        html.AppendLine("</head>");
        html.AppendLine("<body>");
        html.AppendLine($"<h1>OnlineRl run <code>{E(config.RunId)}</code></h1>");
        html.AppendLine("<ul>");
        foreach (var fact in Facts(summary, config)) html.AppendLine($"<li>{E(fact)}</li>");
        html.AppendLine("</ul>");
        html.AppendLine("<section class=\"charts\">");
        foreach (var chart in Charts(summary)) html.AppendLine($"<figure id=\"chart-{chart.Id}\">").AppendLine(chart.Svg).AppendLine("</figure>");
        html.AppendLine("</section>");
        html.AppendLine("<h2>Steps</h2>");
        html.AppendLine("<table>");
        html.AppendLine("<tr>" + string.Concat(TableHeader.Select(h => $"<th>{E(h)}</th>")) + "</tr>");
        foreach (var row in TableRows(summary.Steps)) html.AppendLine("<tr>" + string.Concat(row.Select(c => $"<td>{E(c)}</td>")) + "</tr>");
        html.AppendLine("</table>");
        html.AppendLine("<p>Every metric of every step: <a href=\"metrics.csv\">metrics.csv</a>. Final weights: <code>checkpoint/</code>.</p>");
        html.AppendLine("<h2>Configuration</h2>");
        html.AppendLine("<p>Every key as it can be given on the command line (<code>--section.key value</code>); the same as config.json.</p>");
        html.AppendLine("<div id=\"config\">");
        foreach (var (key, value) in ConfigKeys(JsonNode.Parse(config.ToJson())!, ""))
            html.AppendLine($"<div><code>{E(key)}</code>: {E(value)}</div>");
        html.AppendLine("</div>");
        html.AppendLine("</body>");
        html.AppendLine("</html>");
        return html.ToString();
    }

    /// <summary>An SVG line chart of mean reward and held-out accuracy against the learner step (reward.svg).</summary>
    public static string Chart(RunSummary summary) =>
        LineChart("mean reward (blue) and held-out accuracy (orange) per learner step", [RewardSeries(summary), AccuracySeries(summary)], MaxStep(summary),
            (0, 1), standalone: true);

    /// <summary>One chart of the HTML page: its element id suffix and its SVG.</summary>
    /// <param name="Id">"reward", "accuracy", "kl", "loss", "lag" or "throughput".</param>
    /// <param name="Svg">The inline SVG.</param>
    public sealed record ChartSvg(string Id, string Svg);

    /// <summary>The charts of the HTML page, each series in its own colour.</summary>
    public static IReadOnlyList<ChartSvg> Charts(RunSummary summary)
    {
        var maxStep = MaxStep(summary);
        return
        [
            new("reward", LineChart("mean reward per learner step", [RewardSeries(summary)], maxStep, (0, 1))),
            new("accuracy", LineChart("held-out greedy accuracy (before RL, at each evaluation, at the end)", [AccuracySeries(summary)], maxStep, (0, 1))),
            new("kl", LineChart("KL to the reference policy", [MetricSeries(summary, "KL", "kl", "#2ca02c")], maxStep, (0, 0))),
            new("loss", LineChart("loss", [MetricSeries(summary, "loss", "loss", "#8c564b")], maxStep, null)),
            new("lag", LineChart("policy lag of the trained groups (versions)", [new Series("lag", "#9467bd",
                summary.Steps.Select(s => ((double)s.Step, s.PolicyLagMean)).ToList())], maxStep, (0, 1))),
            new("throughput", LineChart("throughput (generated tokens/s)", [MetricSeries(summary, "tokens/s", "tokens_per_second", "#d62728")], maxStep, (0, 0))),
        ];
    }

    /// <summary>A line of a chart: its legend name, colour and points (non-finite values are left out).</summary>
    /// <param name="Name">The legend entry.</param>
    /// <param name="Color">An SVG colour.</param>
    /// <param name="Points">(x, value) pairs: learner step, seconds, ...</param>
    /// <param name="Dashed">Draw the line dashed.</param>
    public sealed record Series(string Name, string Color, IReadOnlyList<(double X, double Value)> Points, bool Dashed = false);

    private static long MaxStep(RunSummary summary) => Math.Max(1, summary.Steps.Count == 0 ? 1 : summary.Steps.Max(s => s.Step));

    private static Series RewardSeries(RunSummary summary) => MetricSeries(summary, "reward", "reward_mean", "#1f77b4");

    private static Series MetricSeries(RunSummary summary, string name, string key, string color) =>
        new(name, color, summary.Steps.Where(s => s.Metrics.ContainsKey(key)).Select(s => ((double)s.Step, s.Metrics[key])).ToList());

    // Before RL at step 0, every evaluation, and the final accuracy at the last step.
    private static Series AccuracySeries(RunSummary summary) =>
        new("held-out accuracy", "#ff7f0e", summary.Steps.Where(s => s.HeldOutAccuracy is not null).Select(s => ((double)s.Step, s.HeldOutAccuracy!.Value))
            .Prepend((0, summary.InitialAccuracy)).Append((MaxStep(summary), summary.FinalAccuracy)).ToList(), Dashed: true);

    /// <summary>
    /// An SVG line chart against the learner step (or another x from 0 to <paramref name="maxX"/>, named by
    /// <paramref name="xLabel"/>). The value axis spans the data, widened to include <paramref name="span"/> (e.g.
    /// 0..1 for rewards and accuracies; null: the data alone). <paramref name="standalone"/> gives the SVG a fixed size
    /// (a file of its own) instead of the page's width.
    /// </summary>
    public static string LineChart(string title, IReadOnlyList<Series> series, double maxX, (double Low, double High)? span, bool standalone = false,
        string xLabel = "learner step")
    {
        const int width = 720, height = 360, left = 64, right = 20, top = 40, bottom = 50;
        var points = series.Select(s => s with { Points = s.Points.Where(p => double.IsFinite(p.Value)).ToList() }).ToList();
        var values = points.SelectMany(s => s.Points.Select(p => p.Value)).ToList();
        double low = values.Count == 0 ? 0 : values.Min(), high = values.Count == 0 ? 1 : values.Max();
        if (span is { } s)
        {
            low = Math.Min(low, s.Low);
            high = Math.Max(high, s.High);
        }
        if (high - low < 1e-12)
        {
            // A flat line: centre it in a band around the value.
            var pad = Math.Max(Math.Abs(high) * 0.1, 1e-6);
            low -= pad;
            high += pad;
        }
        // Round ticks: a step of 1, 2, 2.5 or 5 times a power of ten, and the axis widened to whole steps.
        var tick = NiceStep((high - low) / 4);
        low = Math.Floor(low / tick + 1e-9) * tick;
        high = Math.Ceiling(high / tick - 1e-9) * tick;
        double X(double x) => left + (width - left - right) * x / maxX;
        double Y(double value) => top + (height - top - bottom) * (1 - (value - low) / (high - low));

        var svg = new StringBuilder();
        var size = standalone ? $"width=\"{width}\" height=\"{height}\"" : "width=\"100%\"";
        svg.AppendLine(Invariant, $"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" {size} role=\"img\" aria-label=\"{WebUtility.HtmlEncode(title)}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.AppendLine(Invariant, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        svg.AppendLine(Invariant, $"<text x=\"{left}\" y=\"18\" font-size=\"14\">{WebUtility.HtmlEncode(title)}</text>");
        var ticks = (int)Math.Round((high - low) / tick);
        for (var i = 0; i <= ticks; i++)
        {
            var value = low + tick * i;
            svg.AppendLine(Invariant, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{Y(value):F1}\" y2=\"{Y(value):F1}\" stroke=\"#ddd\"/>");
            svg.AppendLine(Invariant, $"<text x=\"{left - 8}\" y=\"{Y(value) + 4:F1}\" text-anchor=\"end\">{Tick(value, tick)}</text>");
        }
        for (var i = 0; i <= 5; i++)
        {
            var x = Math.Floor(maxX * i / 5);
            svg.AppendLine(Invariant, $"<text x=\"{X(x):F1}\" y=\"{height - bottom + 18}\" text-anchor=\"middle\">{x}</text>");
        }
        svg.AppendLine(Invariant, $"<text x=\"{(left + width - right) / 2}\" y=\"{height - 12}\" text-anchor=\"middle\">{WebUtility.HtmlEncode(xLabel)}</text>");
        if (values.Count == 0)
            svg.AppendLine(Invariant, $"<text x=\"{(left + width - right) / 2}\" y=\"{height / 2}\" text-anchor=\"middle\" fill=\"#888\">no data</text>");
        var legendX = width - right;
        foreach (var line in points.AsEnumerable().Reverse())
        {
            // Legend entries from the right edge leftwards: a short stroke, then the name.
            legendX -= 14 + 7 * line.Name.Length;
            svg.AppendLine(Invariant, $"<line x1=\"{legendX - 22}\" x2=\"{legendX - 4}\" y1=\"{top - 14}\" y2=\"{top - 14}\" stroke=\"{line.Color}\" stroke-width=\"2\"{(line.Dashed ? " stroke-dasharray=\"4 3\"" : "")}/>");
            svg.AppendLine(Invariant, $"<text x=\"{legendX}\" y=\"{top - 10}\">{WebUtility.HtmlEncode(line.Name)}</text>");
            legendX -= 30;
        }
        foreach (var line in points)
        {
            var coordinates = string.Join(" ", line.Points.Select(p => string.Create(Invariant, $"{X(p.X):F1},{Y(p.Value):F1}")));
            svg.AppendLine(Invariant, $"<polyline data-series=\"{WebUtility.HtmlEncode(line.Name)}\" fill=\"none\" stroke=\"{line.Color}\" stroke-width=\"2\"{(line.Dashed ? " stroke-dasharray=\"4 3\"" : "")} points=\"{coordinates}\"/>");
            // Few points (the evaluations) are marked, each with its value as a tooltip.
            if (line.Points.Count <= 40)
                foreach (var (x, value) in line.Points)
                    svg.AppendLine(Invariant, $"<circle cx=\"{X(x):F1}\" cy=\"{Y(value):F1}\" r=\"3.5\" fill=\"{line.Color}\"><title>{WebUtility.HtmlEncode(xLabel)} {x.ToString("G5", Invariant)}: {value.ToString("G4", Invariant)}</title></circle>");
        }
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    /// <summary>The smallest of 1, 2, 2.5 and 5 times a power of ten that is at least <paramref name="rough"/>.</summary>
    private static double NiceStep(double rough)
    {
        var power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        return new[] { 1, 2, 2.5, 5, 10 }.Select(m => m * power).First(step => step >= rough * (1 - 1e-9));
    }

    // A tick label with the decimals its step needs; tiny or huge steps in scientific notation.
    private static string Tick(double value, double step)
    {
        if (Math.Abs(value) < step * 1e-6) return "0";
        if (step < 1e-3 || step >= 1e6) return value.ToString("0.##E+0", Invariant);
        // step = m * 10^exponent with m in {1, 2, 2.5, 5}: 2.5 needs one decimal more than its power of ten.
        var exponent = (int)Math.Floor(Math.Log10(step) + 1e-9);
        var decimals = Math.Max(0, -exponent + (Math.Abs(step / Math.Pow(10, exponent) - 2.5) < 1e-9 ? 1 : 0));
        return value.ToString("F" + decimals.ToString(Invariant), Invariant);
    }

    /// <summary>A configuration as dotted keys and their values (e.g. "model.hidden_size", "128").</summary>
    private static IEnumerable<(string Key, string Value)> ConfigKeys(JsonNode? node, string prefix) => node switch
    {
        null => [(prefix, "null")],
        JsonObject obj when obj.Count > 0 => obj.SelectMany(p => ConfigKeys(p.Value, prefix.Length == 0 ? p.Key : $"{prefix}.{p.Key}")),
        JsonValue value when value.GetValueKind() == System.Text.Json.JsonValueKind.String => [(prefix, (string)value!)],
        _ => [(prefix, node.ToJsonString())],
    };

    /// <summary>The summary lines shared by report.md and report.html.</summary>
    private static IEnumerable<string> Facts(RunSummary summary, RunConfig config)
    {
        var steps = summary.Steps;
        double Mean(IEnumerable<StepReport> range) => range.Select(s => s.Metrics.GetValueOrDefault("reward_mean")).DefaultIfEmpty(double.NaN).Average();
        var tenth = Math.Max(1, steps.Count / 10);
        yield return $"algorithm: {ConfigNames.Algorithm.Of(config.Algorithm.Name)}, task: {config.Task.Kind}, {steps.Count} learner steps in {summary.ElapsedSeconds:F0} s";
        yield return string.Create(Invariant, $"held-out greedy accuracy: {summary.InitialAccuracy:P1} before RL, {summary.FinalAccuracy:P1} after");
        yield return string.Create(Invariant, $"mean reward: {Mean(steps.Take(tenth)):F3} over the first {tenth} steps, {Mean(steps.TakeLast(tenth)):F3} over the last {tenth}");
        yield return $"groups trained on: {summary.TrainedPrompts.Count} (each once); dropped as stale: {summary.DroppedStale}";
    }

    private static readonly string[] TableHeader = ["step", "reward", "loss", "KL", "held-out accuracy", "tokens/s", "policy lag"];

    /// <summary>About ten rows (every tenth step and the last), the same in report.md and report.html.</summary>
    private static IEnumerable<string[]> TableRows(IReadOnlyList<StepReport> steps)
    {
        var tenth = Math.Max(1, steps.Count / 10);
        foreach (var s in steps.Where((s, i) => i % tenth == 0 || i == steps.Count - 1))
        {
            string M(string key, string format) => (s.Metrics.TryGetValue(key, out var v) ? v : double.NaN).ToString(format, Invariant);
            yield return
            [
                s.Step.ToString(Invariant), M("reward_mean", "F3"), M("loss", "F4"), M("kl", "F4"),
                s.HeldOutAccuracy is { } a ? a.ToString("P1", Invariant) : "", M("tokens_per_second", "F0"), s.PolicyLagMean.ToString("F2", Invariant),
            ];
        }
    }
}
