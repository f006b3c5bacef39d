using System.Runtime.InteropServices;
using OnlineRl.Hosting;
using OnlineRl.Messaging;
using OnlineRl.Pipeline;
using OnlineRl.ServiceDefaults;

namespace OnlineRl.Cli;

/// <summary>
/// `onlinerl feeder|generator|scorer|learner`: one service of a run in its own process, over the transports
/// named by `transport.bus` and `transport.weights`; and `onlinerl ledger`, the per-sample ledger check.
/// </summary>
internal static class ServiceCommands
{
    public static async Task<int> RunAsync(string service, Options options)
    {
        var path = options.String("config", "");
        RunConfig config;
        try
        {
            config = ServiceConfiguration.Load(RunConfig.Load, path.Length == 0 ? null : path, options.Unread());
            PipelineServices.RequireSharedTransports(config);
            PipelineServices.ConfigureProcess(config);
            var start = DateTime.Now;
            void Log(string line) => Console.WriteLine($"[{(DateTime.Now - start).TotalSeconds,6:F1}s] {service} {line}");
            // Ready once the transports are open and the service's loop is running.
            var readiness = Readiness.NotReady("connecting to the transports");
            await using var endpoint = await ServiceEndpoint.StartAsync(new ServiceEndpointOptions
            {
                Port = config.Service.MetricsPort, ServiceName = $"onlinerl-{service}", MeterNames = PipelineMetrics.ServiceMeterNames,
                Readiness = () => readiness,
            });
            Log($"metrics on port {endpoint.Port}");
            // Transport problems (a broker down, Redis restarting, a rebalance) are logged, not only retried.
            using var logs = ServiceLogging.CreateLoggerFactory();
            using var deliveries = PipelineServices.DeliveryJournal(config, config.Service.Id);
            var transports = new Transports(logs);
            await using var bus = transports.CreateBus(config.Transport, deliveries);
            var blobs = transports.CreateBlobStore(config.Transport);
            readiness = Readiness.Ready;
            // SIGTERM (docker stop, Kubernetes) and Ctrl-C stop gracefully: work in hand is finished or handed back.
            using var stop = new CancellationTokenSource();
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
            {
                context.Cancel = true;
                stop.Cancel();
            });
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };
            try
            {
                await (service switch
                {
                    "feeder" => PipelineServices.RunFeederAsync(config, bus, blobs, Log, stop.Token),
                    "generator" => PipelineServices.RunGeneratorAsync(config, bus, blobs,
                        transports.CreateGeneratorStatus(config.Transport, PipelineServices.WeightsPrefix(config)), Log, stop.Token),
                    "scorer" => PipelineServices.RunScorerAsync(config, bus, Log, stop.Token),
                    _ => PipelineServices.RunLearnerAsync(config, bus, blobs,
                        transports.CreateGeneratorStatus(config.Transport, PipelineServices.WeightsPrefix(config)), Log, stop.Token),
                });
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                Log("stopped");
            }
            return 0;
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (TransportAuthenticationException e)
        {
            // A refused password or certificate: say so and stop, instead of retrying for ever.
            Console.Error.WriteLine($"error: {e.Message}");
            return 3;
        }
        catch (IOException e) when (e.Message.Contains("service.metrics_port", StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    public static int Ledger(Options options)
    {
        var directory = options.String("dir", "");
        options.RejectUnknown();
        if (directory.Length == 0) throw new UsageException("ledger needs --dir DIR");
        try
        {
            var report = OnlineRl.Pipeline.Ledger.Verify(directory);
            Console.WriteLine(report);
            return report.Ok ? 0 : 1;
        }
        catch (DirectoryNotFoundException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
