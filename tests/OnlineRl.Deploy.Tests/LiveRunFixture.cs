using System.Net;
using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Pipeline;

namespace OnlineRl.Deploy.Tests;

/// <summary>
/// One tiny all-in-one run (real feeder, generator, scorer and learner on the in-process bus) with the
/// service endpoint serving /metrics on a loopback port and, where installed, a real Prometheus server
/// scraping it during the run. Also drives the messaging error paths for real (a malformed message and a
/// failing handler through <see cref="Consumer{T}"/>) so the dead-letter and failure counters exist.
/// The tests then read what the services really export.
/// </summary>
public sealed class LiveRunFixture : IAsyncLifetime
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly string output = Path.Combine(Path.GetTempPath(), $"onlinerl-deploy-run-{Guid.NewGuid():N}");
    private ServiceEndpoint? endpoint;

    public RunSummary Summary { get; private set; } = null!;
    public PrometheusServer? Prometheus { get; private set; }
    public string? PrometheusMissing { get; } = PrometheusServer.MissingReason;

    /// <summary>The endpoint's /metrics text after the run.</summary>
    public string MetricsText { get; private set; } = "";

    public async Task InitializeAsync()
    {
        endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions { Port = 0, ListenAddress = IPAddress.Loopback, ServiceName = "onlinerl-run",
            MeterNames = PipelineMetrics.ServiceMeterNames });
        if (PrometheusMissing is null)
        {
            Prometheus = await PrometheusServer.StartAsync([$"127.0.0.1:{endpoint.Port}"], TimeSpan.FromMilliseconds(100));
            // Target discovery and the first scrape take a moment; the run is short, so start it only once scrapes flow.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await Prometheus.QueryAsync("up")).FirstOrDefault().Value != 1 && DateTime.UtcNow < deadline) await Task.Delay(100);
        }
        await DriveErrorPathsAsync();
        var config = RunConfig.Load(null, new Dictionary<string, string>
        {
            ["run_id"] = "deploy-tests", ["output_dir"] = output, ["threads"] = "1",
            ["model.hidden_size"] = "32", ["model.layers"] = "1", ["model.heads"] = "2", ["model.kv_heads"] = "2", ["model.intermediate_size"] = "64",
            ["task.eval_size"] = "8", ["sft.steps"] = "3", ["sampling.group_size"] = "4", ["sampling.max_new_tokens"] = "4",
            ["algorithm.prompts_per_step"] = "4", ["train.steps"] = "40", ["train.eval_every"] = "0",
        });
        using var stop = new CancellationTokenSource();
        var scraping = ScrapeUntilAsync(stop.Token);
        try
        {
            Summary = await InProcessRun.RunAsync(config, _ => { });
        }
        finally
        {
            await stop.CancelAsync();
            await scraping;
        }
        MetricsText = await Http.GetStringAsync(MetricsUrl);
    }

    private string MetricsUrl => $"http://127.0.0.1:{endpoint!.Port}/metrics";

    /// <summary>Scrapes during the run that failed (the error of each).</summary>
    public List<string> FailedScrapes { get; } = [];

    /// <summary>What /metrics served while the run was going (scraped every 0.2 s), then the final scrape.</summary>
    public List<string> ScrapesDuringRun { get; } = [];

    private async Task ScrapeUntilAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                ScrapesDuringRun.Add(await Http.GetStringAsync(MetricsUrl, CancellationToken.None));
            }
            catch (HttpRequestException e)
            {
                // Counted and checked by a test: once in about eight full-suite runs under heavy load the exporter
                // answered one scrape with 500 (cause not found yet); Prometheus records such a scrape as up=0.
                FailedScrapes.Add(e.Message);
            }
            try { await Task.Delay(200, stop); } catch (OperationCanceledException) { }
        }
    }

    private static async Task DriveErrorPathsAsync()
    {
        await using var bus = new InProcessEventBus();
        var consumer = new Consumer<PromptMessage>(bus, Topics.Prompts, "deploy-tests", "deploy-tests-0",
            new ConsumerOptions { ServiceId = "deploy-tests-0", Stage = "test", RunId = "deploy-tests", MaxDeliveryAttempts = 1 });
        var subscription = bus.Subscribe(Topics.Prompts, "deploy-tests", "deploy-tests-0");
        await using var _ = subscription;
        await bus.PublishAsync(Topics.Prompts, "garbage", new byte[] { 0xff, 0x00, 0x13, 0x37 });
        var prompt = new PromptMessage { PromptId = "p-1", Text = "1+1=", Dataset = "addition" };
        prompt.TokenIds.Add(1);
        await new Publisher(bus).PublishAsync(Topics.Prompts, prompt.Stamp("deploy-tests"), prompt.PromptId);
        for (var i = 0; i < 2; i++)
        {
            var message = await subscription.ReceiveAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            await consumer.ProcessAsync(subscription, message, (_, _, _) => throw new InvalidOperationException("handler fails on purpose"), CancellationToken.None);
        }
    }

    public async Task DisposeAsync()
    {
        Prometheus?.Dispose();
        if (endpoint is not null) await endpoint.DisposeAsync();
        try { Directory.Delete(output, recursive: true); } catch (IOException) { }
    }
}
