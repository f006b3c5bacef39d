using OnlineRl.Pipeline;
using OnlineRl.ServiceDefaults;

namespace OnlineRl.Cli;

/// <summary>`onlinerl run`: the all-in-one online RL run.</summary>
internal static class RunCommand
{
    public static async Task<int> RunAsync(Options options)
    {
        var path = options.String("config", "");
        var overrides = options.Unread();
        RunConfig config;
        try
        {
            config = ServiceConfiguration.Load(path.Length == 0 ? null : path, overrides);
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        var start = DateTime.Now;
        void Log(string line) => Console.WriteLine($"[{(DateTime.Now - start).TotalSeconds,6:F1}s] {line}");
        // Metrics are a convenience here: a busy port must not stop the run.
        ServiceEndpoint? endpoint = null;
        try
        {
            endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions { Port = config.Service.MetricsPort, ServiceName = "onlinerl-run" });
            Log($"metrics: http://localhost:{endpoint.Port}/metrics (health: /healthz, /readyz)");
        }
        catch (IOException e)
        {
            Log($"warning: no metrics endpoint ({e.Message}); set service.metrics_port to a free port");
        }
        await using var _ = endpoint;
        try
        {
            var summary = await InProcessRun.RunAsync(config, Log, cancel.Token);
            return summary.Steps.Count > 0 ? 0 : 1;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Console.Error.WriteLine("interrupted");
            return 130;
        }
    }
}
