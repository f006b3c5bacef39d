using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;

namespace OnlineRl.ServiceDefaults;

/// <summary>
/// Passes the OpenTelemetry SDK's and the Prometheus exporter's own warnings and errors (a metric callback that
/// threw, a failed collection behind an HTTP 500 on /metrics) to a callback, in plain words and each distinct one
/// once. Without it they go only to an EventSource nobody listens to, and a failed scrape leaves no trace in the logs.
/// </summary>
/// <remarks>
/// The SDK also warns about every instrument of every meter in the process that this endpoint does not export
/// (ASP.NET Core's memory pool, for one): about thirty lines at each start that say nothing wrong, since exporting a
/// chosen set of meters is the design. Those are dropped; every other warning is kept.
/// </remarks>
internal sealed class MetricsDiagnostics : EventListener
{
    // Set after the base constructor, which may already enable sources and so deliver events: those are dropped.
    private readonly Action<string>? report;
    private readonly ConcurrentDictionary<string, bool> reported = new(StringComparer.Ordinal);

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
        var payload = e.PayloadNames is { } names && e.Payload is { } values
            ? names.Zip(values).ToDictionary(p => p.First, p => Convert.ToString(p.Second, CultureInfo.InvariantCulture) ?? "", StringComparer.Ordinal)
            : [];
        var fallback = e.Message is { Length: > 0 } format && e.Payload is { } args
            ? string.Format(CultureInfo.InvariantCulture, format, [.. args])
            : string.Join(", ", payload.Values);
        if (Describe(e.EventName ?? "", payload, fallback) is { } message && reported.TryAdd(message, true)) report(message);
    }

    /// <summary>
    /// What a user should read for an SDK event, or null for one that reports nothing wrong. Exceptions are cut to
    /// their first line ("Type: message"): the stack trace is the SDK's, not the user's code.
    /// </summary>
    /// <param name="eventName">The EventSource event's name, e.g. <c>ObservableInstrumentCallbackException</c>.</param>
    /// <param name="payload">The event's named arguments as text.</param>
    /// <param name="fallback">The SDK's own formatted message, used for events without a plain description here.</param>
    internal static string? Describe(string eventName, IReadOnlyDictionary<string, string> payload, string fallback)
    {
        string Arg(string name) => payload.TryGetValue(name, out var value) ? FirstLine(value) : "?";
        return eventName switch
        {
            "MetricInstrumentIgnored" when payload.GetValueOrDefault("reason", "").Contains("not subscribed", StringComparison.Ordinal) => null,
            "MetricInstrumentIgnored" => $"metric '{Arg("instrumentName")}' of meter '{Arg("meterName")}' is not exported: {Arg("reason")}",
            "ObservableInstrumentCallbackException" => $"a metric callback failed, so its values are missing from /metrics: {Arg("exception")}",
            "MeasurementDropped" => $"measurements of metric '{Arg("instrumentName")}' were dropped: {Arg("reason")}",
            "DuplicateMetricInstrument" => $"metric '{Arg("instrumentName")}' of meter '{Arg("meterName")}' is defined twice: {Arg("reason")}",
            "FailedExport" => $"collecting metrics failed, so a scrape of /metrics answered 500: {FirstLine(fallback)}",
            "MetricReaderException" or "MeterProviderException" => $"the metrics SDK failed: {FirstLine(fallback)}",
            _ => FirstLine(fallback),
        };
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOfAny(['\r', '\n']);
        return (end < 0 ? text : text[..end]).Trim();
    }
}
