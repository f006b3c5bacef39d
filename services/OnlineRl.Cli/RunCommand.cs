using System.Runtime.InteropServices;
using OnlineRl.Hosting;
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
            config = ServiceConfiguration.Load(RunConfig.Load, path.Length == 0 ? null : path, overrides);
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        using var cancel = new CancellationTokenSource();
        // Ctrl-C and SIGTERM (docker stop, a CI timeout) stop the run between two steps, the SFT warm start included.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            cancel.Cancel();
        });
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        // SFT and RL steps as one line redrawn in place on a terminal; plain lines in a pipe or a CI log.
        var progress = ConsoleProgress.ForConsole();
        Action<string> log = progress.Line;
        // Metrics are a convenience here: a busy port must not stop the run.
        ServiceEndpoint? endpoint = null;
        try
        {
            endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions
            {
                // Through the progress output, so a warning does not land in the middle of the live line.
                Port = config.Service.MetricsPort, ServiceName = "onlinerl-run", MeterNames = PipelineMetrics.ServiceMeterNames,
                ReportMetricsProblem = problem => log("metrics: " + problem),
            });
            log($"metrics: http://localhost:{endpoint.Port}/metrics (health: /healthz, /readyz)");
        }
        catch (IOException e)
        {
            log($"warning: no metrics endpoint ({e.Message}); set service.metrics_port to a free port");
        }
        await using var _ = endpoint;
        try
        {
            var summary = await InProcessRun.RunAsync(config, log, cancel.Token, progress, new Transports());
            return summary.Steps.Count > 0 ? 0 : 1;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            progress.End(); // the live line stays as it was; the message goes under it
            Console.Error.WriteLine("interrupted");
            return 130;
        }
    }
}
