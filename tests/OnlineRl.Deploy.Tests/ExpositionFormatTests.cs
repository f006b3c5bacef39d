using System.Diagnostics.Metrics;
using System.Net;

namespace OnlineRl.Deploy.Tests;

/// <summary>
/// The test classes that start service endpoints, run one after another. An endpoint exports the HTTP server's meters
/// by name, and ASP.NET Core names them the same in every host: two endpoints alive in one process see each other's
/// instruments (the SDK warns they are defined twice), and when one host stops, the other's HTTP-server metrics go
/// with it. A service process has one endpoint; these tests keep to that by not overlapping.
/// </summary>
[CollectionDefinition(Name)]
public sealed class EndpointCollection
{
    public const string Name = "service endpoints, one at a time";
}

// What /metrics serves must be the Prometheus text format exactly: HELP/TYPE lines, units in names,
// counters with _total, cumulative histogram buckets ending in +Inf equal to _count, escaped labels.
// Each test records on its own meter, so the values are only its own.
[Collection(EndpointCollection.Name)]
public sealed class ExpositionFormatTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private static async Task<(ServiceEndpoint Endpoint, Meter Meter)> StartAsync()
    {
        var meter = new Meter("OnlineRl.Deploy.Tests." + Guid.NewGuid().ToString("N"));
        var endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions { Port = 0, ListenAddress = IPAddress.Loopback, MeterNames = [meter.Name] });
        return (endpoint, meter);
    }

    private static async Task<Dictionary<string, Family>> ScrapeAsync(ServiceEndpoint endpoint)
    {
        using var response = await Http.GetAsync($"http://127.0.0.1:{endpoint.Port}/metrics");
        response.EnsureSuccessStatusCode();
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Histogram_buckets_are_cumulative_and_end_in_plus_inf_equal_to_count()
    {
        var (endpoint, meter) = await StartAsync();
        await using var _ = endpoint;
        using var __ = meter;
        double[] bounds = [0.1, 1, 10];
        double[] values = [0.05, 0.1, 0.5, 0.7, 5, 50, 50];
        var histogram = meter.CreateHistogram("test.latency", "s", "Latency.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = bounds });
        foreach (var v in values) histogram.Record(v);

        var family = (await ScrapeAsync(endpoint))["test_latency_seconds"];
        Assert.Equal("histogram", family.Type);
        Assert.Equal("Latency.", family.Help);
        var buckets = family.Samples.Where(s => s.Name == "test_latency_seconds_bucket").ToList();
        Assert.Equal(bounds.Select(b => b.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append("+Inf"), buckets.Select(b => b.Labels["le"]));
        for (var i = 0; i < bounds.Length; i++) Assert.Equal(values.Count(v => v <= bounds[i]), buckets[i].Value);
        Assert.True(buckets.Zip(buckets.Skip(1)).All(p => p.First.Value <= p.Second.Value), "buckets must be cumulative");
        var count = family.Samples.Single(s => s.Name == "test_latency_seconds_count").Value;
        Assert.Equal(values.Length, count);
        Assert.Equal(count, buckets[^1].Value);
        Assert.Equal(values.Sum(), family.Samples.Single(s => s.Name == "test_latency_seconds_sum").Value, 9);
    }

    [Fact]
    public async Task Counters_end_in_total_and_units_are_in_names()
    {
        var (endpoint, meter) = await StartAsync();
        await using var _ = endpoint;
        using var __ = meter;
        meter.CreateCounter<long>("test.events", "{event}", "Events.").Add(3);
        meter.CreateCounter<long>("test.payload", "By", "Bytes.").Add(10);
        meter.CreateGauge<double>("test.wait", "s", "Wait.").Record(1.5);

        var families = await ScrapeAsync(endpoint);
        Assert.Equal("counter", families["test_events_total"].Type);
        Assert.Equal(3, families["test_events_total"].Samples.Single().Value);
        Assert.Equal(10, families["test_payload_bytes_total"].Samples.Single().Value);
        Assert.Equal("gauge", families["test_wait_seconds"].Type);
        Assert.Equal(1.5, families["test_wait_seconds"].Samples.Single().Value);
    }

    [Fact]
    public async Task Label_values_and_help_text_are_escaped()
    {
        var (endpoint, meter) = await StartAsync();
        await using var _ = endpoint;
        using var __ = meter;
        const string awkward = "quote\" backslash\\ newline\n end";
        const string help = "Help with a backslash \\ and a\nsecond line.";
        meter.CreateCounter<long>("test.escaped", null, help).Add(1, new KeyValuePair<string, object?>("reason", awkward));

        var family = (await ScrapeAsync(endpoint))["test_escaped_total"];
        Assert.Equal(help, family.Help);
        Assert.Equal(awkward, family.Samples.Single().Labels["reason"]);
    }

    [Fact]
    public async Task Health_and_readiness_answer_with_the_services_reason()
    {
        var ready = Readiness.NotReady("waiting for weights version 1");
        await using var endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions
        {
            Port = 0, ListenAddress = IPAddress.Loopback, Readiness = () => ready,
        });
        var root = $"http://127.0.0.1:{endpoint.Port}";
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(root + "/healthz")).StatusCode);
        var notReady = await Http.GetAsync(root + "/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.Contains("waiting for weights version 1", await notReady.Content.ReadAsStringAsync());
        ready = Readiness.Ready;
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(root + "/readyz")).StatusCode);
    }

    [Fact]
    public async Task A_failing_readiness_check_is_not_ready_with_its_message()
    {
        await using var endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions
        {
            Port = 0, ListenAddress = IPAddress.Loopback, Readiness = () => throw new InvalidOperationException("bus not connected"),
        });
        var response = await Http.GetAsync($"http://127.0.0.1:{endpoint.Port}/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("bus not connected", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_metric_callback_that_throws_is_reported_and_the_other_metrics_still_serve()
    {
        var meter = new Meter("OnlineRl.Deploy.Tests." + Guid.NewGuid().ToString("N"));
        using var _ = meter;
        var problems = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions
        {
            Port = 0, ListenAddress = IPAddress.Loopback, MeterNames = [meter.Name], ReportMetricsProblem = problems.Enqueue,
        });
        meter.CreateCounter<long>("test.healthy", "{event}", "Healthy.").Add(2);
        meter.CreateObservableGauge("test.broken", new Func<long>(() => throw new InvalidOperationException("queue depth unavailable")), "{message}", "Broken.");

        var families = await ScrapeAsync(endpoint);
        Assert.Equal(2, families["test_healthy_total"].Samples.Single().Value);
        await ScrapeAsync(endpoint);
        // Once in plain words, although every scrape runs the callback again; no SDK stack trace.
        var problem = Assert.Single(problems, p => p.Contains("queue depth unavailable", StringComparison.Ordinal));
        Assert.StartsWith("a metric callback failed, so its values are missing from /metrics: System.InvalidOperationException", problem);
        Assert.DoesNotContain('\n', problem);
    }

    [Fact]
    public async Task Meters_the_endpoint_does_not_export_raise_no_warning()
    {
        // Before: the SDK warned once per instrument of every meter in the process it did not export (34 lines at the
        // start of every run, for ASP.NET Core's and the runtime's meters). Those say nothing wrong and are dropped.
        var problems = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var unexported = new Meter("OnlineRl.Deploy.Tests.Unexported." + Guid.NewGuid().ToString("N"));
        unexported.CreateCounter<long>("test.ignored", "{event}", "Not exported.");
        await using var endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions
        {
            Port = 0, ListenAddress = IPAddress.Loopback, MeterNames = [], ReportMetricsProblem = problems.Enqueue,
        });
        unexported.CreateCounter<long>("test.ignored_later", "{event}", "Not exported either.").Add(1);
        var families = await ScrapeAsync(endpoint);
        Assert.DoesNotContain(families.Keys, name => name.StartsWith("test_ignored", StringComparison.Ordinal));
        Assert.True(problems.IsEmpty, string.Join("\n", problems));
    }

    [Fact]
    public async Task Every_endpoint_exports_runtime_process_and_http_server_metrics()
    {
        await using var endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions { Port = 0, ListenAddress = IPAddress.Loopback });
        await ScrapeAsync(endpoint); // the first request: its duration is recorded once it has been answered
        var families = await ScrapeAsync(endpoint);
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        Assert.Equal(Environment.ProcessorCount, families["dotnet_process_cpu_count"].Samples.Single().Value);
        Assert.InRange(families["process_memory_usage_bytes"].Samples.Single().Value, Environment.WorkingSet / 2.0, Environment.WorkingSet * 2.0);
        Assert.Equal(["system", "user"], families["process_cpu_time_seconds_total"].Samples.Select(s => s.Labels["cpu_mode"]).Order());
        Assert.InRange(families["process_thread_count"].Samples.Single().Value, 2, 10_000);
        Assert.Contains(families["dotnet_gc_collections_total"].Samples, s => s.Labels["gc_heap_generation"] == "gen0");
        Assert.True(families["dotnet_gc_pause_time_seconds_total"].Samples.Single().Value >= 0);
        var scrapes = families["http_server_request_duration_seconds"].Samples
            .Where(s => s.Name == "http_server_request_duration_seconds_count" && s.Labels["http_route"] == "/metrics").ToList();
        Assert.True(scrapes.Sum(s => s.Value) >= 1, "the first scrape's duration is missing");
    }

    [Fact]
    public async Task A_port_in_use_fails_with_the_port_named()
    {
        await using var first = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions { Port = 0, ListenAddress = IPAddress.Loopback });
        var error = await Assert.ThrowsAsync<IOException>(() =>
            ServiceEndpoint.StartAsync(new ServiceEndpointOptions { Port = first.Port, ListenAddress = IPAddress.Loopback }));
        Assert.Contains($":{first.Port}", error.Message);
        Assert.Contains("service.metrics_port", error.Message);
    }
}
