using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace OnlineRl.ServiceDefaults;

/// <summary>Whether a service can do its work now, and if not, why.</summary>
/// <param name="IsReady">True when the service can take work.</param>
/// <param name="Reason">What /readyz answers (e.g. "waiting for weights version 1").</param>
public sealed record Readiness(bool IsReady, string Reason)
{
    /// <summary>Ready.</summary>
    public static Readiness Ready { get; } = new(true, "ready");

    /// <summary>Not ready, for <paramref name="reason"/>.</summary>
    /// <param name="reason">Why not (shown on /readyz with status 503).</param>
    public static Readiness NotReady(string reason) => new(false, reason);
}

/// <summary>Settings of a <see cref="ServiceEndpoint"/>.</summary>
public sealed record ServiceEndpointOptions
{
    /// <summary>The port (config key <c>service.metrics_port</c>, default 9400); 0 picks a free port.</summary>
    public int Port { get; init; } = 9400;

    /// <summary>The address to listen on: all interfaces by default (containers), loopback in tests.</summary>
    public IPAddress ListenAddress { get; init; } = IPAddress.Any;

    /// <summary>The <c>service.name</c> resource attribute (shown in the <c>target_info</c> metric).</summary>
    public string ServiceName { get; init; } = "onlinerl";

    /// <summary>
    /// The service's own meters exported on /metrics (a pipeline service: OnlineRl.Pipeline's
    /// <c>PipelineMetrics.ServiceMeterNames</c>); none by default. The runtime, process and ASP.NET Core metrics are
    /// always exported beside them.
    /// </summary>
    public IReadOnlyList<string> MeterNames { get; init; } = [];

    /// <summary>Answers /readyz: called on every request, so keep it cheap. An exception counts as not ready.</summary>
    public Func<Readiness> Readiness { get; init; } = () => ServiceDefaults.Readiness.Ready;

    /// <summary>
    /// Receives the metrics SDK's and exporter's warnings and errors in plain words, each distinct one once, e.g. why a
    /// scrape answered 500 or which metric callback threw; by default they are written to standard error.
    /// </summary>
    public Action<string> ReportMetricsProblem { get; init; } = message => Console.Error.WriteLine("metrics: " + message);
}

/// <summary>
/// The small HTTP server every service process runs: GET /metrics (Prometheus text exposition of the
/// configured meters plus runtime, process and HTTP-server metrics, through the OpenTelemetry SDK and its
/// Prometheus exporter), /healthz (the process is alive) and /readyz (the service's own readiness callback;
/// 503 with the reason when not ready).
/// </summary>
/// <remarks>
/// Built on an empty ASP.NET Core host: no logging providers, no startup banner and no Ctrl+C handling,
/// so it does not disturb a console application's output or shutdown. One per process: the HTTP server's meters
/// carry the same names in every ASP.NET Core host, so a second endpoint alive in the same process would see (and
/// lose, when either stops) the first one's HTTP-server metrics.
/// </remarks>
public sealed class ServiceEndpoint : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly MetricsDiagnostics diagnostics;

    private ServiceEndpoint(WebApplication app, MetricsDiagnostics diagnostics, int port)
    {
        this.app = app;
        this.diagnostics = diagnostics;
        Port = port;
    }

    /// <summary>The port actually bound (the picked one when <see cref="ServiceEndpointOptions.Port"/> was 0).</summary>
    public int Port { get; }

    /// <summary>Starts listening.</summary>
    /// <param name="options">Port, address, meters and readiness.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="IOException">The port is in use (the message names it).</exception>
    public static async Task<ServiceEndpoint> StartAsync(ServiceEndpointOptions options, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.Listen(options.ListenAddress, options.Port));
        builder.Services.AddRoutingCore();
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName))
            .WithMetrics(metrics => metrics.AddMeter([.. options.MeterNames])
                // The service's health beside its work: GC, heap, JIT and thread pool (the runtime's System.Runtime
                // meter), memory, CPU time and threads of the process, and this HTTP server (requests, Kestrel).
                .AddRuntimeInstrumentation()
                .AddProcessInstrumentation()
                .AddAspNetCoreInstrumentation()
                // No response cache: every scrape sees the values recorded up to that moment.
                .AddPrometheusExporter(exporter => exporter.ScrapeResponseCacheDurationMilliseconds = 0));
        var app = builder.Build();
        var diagnostics = new MetricsDiagnostics(options.ReportMetricsProblem);
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () =>
        {
            Readiness readiness;
            try
            {
                readiness = options.Readiness();
            }
            catch (Exception e)
            {
                readiness = Readiness.NotReady($"readiness check failed: {e.Message}");
            }
            return Results.Text(readiness.Reason + "\n", statusCode: readiness.IsReady ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            diagnostics.Dispose();
            await app.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"cannot listen on {options.ListenAddress}:{options.Port} for /metrics (service.metrics_port): {e.Message}", e);
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ServiceEndpoint(app, diagnostics, new Uri(address).Port);
    }

    /// <summary>Stops the server.</summary>
    public async ValueTask DisposeAsync()
    {
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        diagnostics.Dispose();
    }
}
