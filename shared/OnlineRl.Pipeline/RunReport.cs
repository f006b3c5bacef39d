using System.Globalization;
using System.Text;

namespace OnlineRl.Pipeline;

/// <summary>
/// The end-of-run report: metrics.csv (one row per learner step, every metric a column), reward.svg (reward
/// and held-out accuracy against steps, viewable in any browser) and report.md summarising both.
/// </summary>
public static class RunReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Writes the three files into the run's output folder.</summary>
    public static void Write(RunSummary summary, RunConfig config)
    {
        File.WriteAllText(Path.Combine(summary.OutputDir, "metrics.csv"), Csv(summary.Steps));
        File.WriteAllText(Path.Combine(summary.OutputDir, "reward.svg"), Chart(summary));
        File.WriteAllText(Path.Combine(summary.OutputDir, "report.md"), Markdown(summary, config));
    }

    /// <summary>The metrics table as CSV.</summary>
    public static string Csv(IReadOnlyList<StepReport> steps)
    {
        var keys = steps.SelectMany(s => s.Metrics.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var text = new StringBuilder();
        text.Append("step,elapsed_s,policy_version,policy_lag,dropped_stale,duplicates,skipped,heldout_accuracy");
        foreach (var key in keys) text.Append(',').Append(key);
        text.Append('\n');
        foreach (var s in steps)
        {
            text.Append(Invariant, $"{s.Step},{s.ElapsedSeconds:F2},{s.PolicyVersion},{s.PolicyLagMean:F3},{s.DroppedStale},{s.Duplicates},{(s.Skipped ? 1 : 0)},");
            text.Append(s.HeldOutAccuracy is { } a ? a.ToString("F4", Invariant) : "");
            foreach (var key in keys) text.Append(',').Append(s.Metrics.TryGetValue(key, out var v) ? v.ToString("G6", Invariant) : "");
            text.Append('\n');
        }
        return text.ToString();
    }

    private static string Markdown(RunSummary summary, RunConfig config)
    {
        var steps = summary.Steps;
        double Mean(IEnumerable<StepReport> range) => range.Select(s => s.Metrics.GetValueOrDefault("reward_mean")).DefaultIfEmpty(double.NaN).Average();
        var tenth = Math.Max(1, steps.Count / 10);
        var text = new StringBuilder();
        text.AppendLine($"# OnlineRl run `{config.RunId}`").AppendLine();
        text.AppendLine($"- algorithm: {config.Algorithm.Name}, task: {config.Task.Kind}, {steps.Count} learner steps in {summary.ElapsedSeconds:F0} s");
        text.AppendLine(Invariant, $"- held-out greedy accuracy: {summary.InitialAccuracy:P1} before RL, {summary.FinalAccuracy:P1} after");
        text.AppendLine(Invariant, $"- mean reward: {Mean(steps.Take(tenth)):F3} over the first {tenth} steps, {Mean(steps.TakeLast(tenth)):F3} over the last {tenth}");
        text.AppendLine($"- groups trained on: {summary.TrainedPrompts.Count} (each once); dropped as stale: {summary.DroppedStale}");
        text.AppendLine().AppendLine("![reward and held-out accuracy](reward.svg)").AppendLine();
        text.AppendLine("| step | reward | loss | KL | held-out accuracy | tokens/s | policy lag |");
        text.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in steps.Where((s, i) => i % tenth == 0 || i == steps.Count - 1))
        {
            double M(string key) => s.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
            text.AppendLine(Invariant, $"| {s.Step} | {M("reward_mean"):F3} | {M("loss"):F4} | {M("kl"):F4} | {(s.HeldOutAccuracy is { } a ? a.ToString("P1", Invariant) : "")} | {M("tokens_per_second"):F0} | {s.PolicyLagMean:F2} |");
        }
        text.AppendLine().AppendLine("Every metric of every step: `metrics.csv`. Final weights: `checkpoint/`.");
        return text.ToString();
    }

    /// <summary>An SVG line chart of mean reward (and held-out accuracy points) against the step.</summary>
    public static string Chart(RunSummary summary)
    {
        const int width = 720, height = 360, left = 60, right = 20, top = 30, bottom = 50;
        var steps = summary.Steps;
        var maxStep = Math.Max(1, steps.Count == 0 ? 1 : steps.Max(s => s.Step));
        var rewards = steps.Select(s => (s.Step, Value: s.Metrics.GetValueOrDefault("reward_mean"))).ToList();
        var accuracy = steps.Where(s => s.HeldOutAccuracy is not null).Select(s => (s.Step, Value: s.HeldOutAccuracy!.Value))
            .Prepend((Step: 0L, Value: summary.InitialAccuracy)).Append((Step: maxStep, Value: summary.FinalAccuracy)).Where(p => double.IsFinite(p.Value)).ToList();
        var all = rewards.Select(r => r.Value).Concat(accuracy.Select(a => a.Value)).Where(double.IsFinite).DefaultIfEmpty(0).ToList();
        double low = Math.Min(0, all.Min()), high = Math.Max(1, all.Max());
        double X(long step) => left + (width - left - right) * step / (double)maxStep;
        double Y(double value) => top + (height - top - bottom) * (1 - (value - low) / (high - low));
        string Points(IEnumerable<(long Step, double Value)> series) =>
            string.Join(" ", series.Select(p => string.Create(Invariant, $"{X(p.Step):F1},{Y(p.Value):F1}")));

        var svg = new StringBuilder();
        svg.AppendLine(Invariant, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.AppendLine(Invariant, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        svg.AppendLine(Invariant, $"<text x=\"{left}\" y=\"18\" font-size=\"14\">mean reward (blue) and held-out accuracy (orange) per learner step</text>");
        for (var i = 0; i <= 4; i++)
        {
            var value = low + (high - low) * i / 4;
            svg.AppendLine(Invariant, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{Y(value):F1}\" y2=\"{Y(value):F1}\" stroke=\"#ddd\"/>");
            svg.AppendLine(Invariant, $"<text x=\"{left - 8}\" y=\"{Y(value) + 4:F1}\" text-anchor=\"end\">{value:0.##}</text>");
        }
        for (var i = 0; i <= 5; i++)
        {
            var step = maxStep * i / 5;
            svg.AppendLine(Invariant, $"<text x=\"{X(step):F1}\" y=\"{height - bottom + 18}\" text-anchor=\"middle\">{step}</text>");
        }
        svg.AppendLine(Invariant, $"<text x=\"{(left + width - right) / 2}\" y=\"{height - 12}\" text-anchor=\"middle\">learner step</text>");
        svg.AppendLine(Invariant, $"<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{Points(rewards)}\"/>");
        svg.AppendLine(Invariant, $"<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" stroke-dasharray=\"4 3\" points=\"{Points(accuracy)}\"/>");
        foreach (var (step, value) in accuracy)
            svg.AppendLine(Invariant, $"<circle cx=\"{X(step):F1}\" cy=\"{Y(value):F1}\" r=\"3.5\" fill=\"#ff7f0e\"/>");
        svg.AppendLine("</svg>");
        return svg.ToString();
    }
}
