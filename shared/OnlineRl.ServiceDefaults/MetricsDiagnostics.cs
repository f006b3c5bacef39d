using System.Diagnostics.Tracing;
using System.Globalization;

namespace OnlineRl.ServiceDefaults;

/// <summary>
/// Passes the OpenTelemetry SDK's and the Prometheus exporter's own warnings and errors (a metric callback that
/// threw, a failed collection behind an HTTP 500 on /metrics, an instrument the SDK ignored) to a callback.
/// Without it they go only to an EventSource nobody listens to, and a failed scrape leaves no trace in the logs.
/// </summary>
internal sealed class MetricsDiagnostics : EventListener
{
    // Set after the base constructor, which may already enable sources and so deliver events: those are dropped.
    private readonly Action<string>? report;

    public MetricsDiagnostics(Action<string> report) => this.report = report;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name.StartsWith("OpenTelemetry-Sdk", StringComparison.Ordinal) ||
            source.Name.StartsWith("OpenTelemetry-Exporter-Prometheus", StringComparison.Ordinal))
            EnableEvents(source, EventLevel.Warning);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (report is null || e.Level > EventLevel.Warning) return;
        var message = e.Message is { Length: > 0 } format && e.Payload is { } payload
            ? string.Format(CultureInfo.InvariantCulture, format, [.. payload])
            : string.Join(", ", e.Payload ?? []);
        report($"{e.EventSource.Name} {e.Level.ToString().ToLowerInvariant()} ({e.EventName}): {message}");
    }
}
