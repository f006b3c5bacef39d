using System.Diagnostics;
using OnlineRl.Messaging.Kafka;

namespace OnlineRl.TestSupport;

/// <summary>
/// librdkafka's mock Kafka cluster for a test, on loopback: in the test process (<see cref="StartInProcess"/>)
/// or as the <c>onlinerl kafka-mock</c> helper process (<see cref="StartProcess"/>) that other service
/// processes connect to. Dispose tears it down.
/// </summary>
public sealed class KafkaMock : IDisposable
{
    /// <summary>The first-rebalance delay tests use (Kafka's default, 3 s, would slow every group join).</summary>
    public static readonly TimeSpan TestRebalanceDelay = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Client settings that make group membership changes quick (heartbeats every 250 ms, a dead member noticed
    /// after 6 s) and metadata refresh often; pass them as <see cref="KafkaEventBusOptions.Settings"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, string> FastGroupSettings { get; } = new Dictionary<string, string>
    {
        ["heartbeat.interval.ms"] = "250",
        ["session.timeout.ms"] = "6000",
        ["topic.metadata.refresh.interval.ms"] = "1000",
    };

    private readonly MockKafkaCluster? _cluster;
    private readonly Process? _process;

    private KafkaMock(string bootstrapServers, MockKafkaCluster? cluster, Process? process)
    {
        BootstrapServers = bootstrapServers;
        _cluster = cluster;
        _process = process;
    }

    /// <summary>The bootstrap address list ("127.0.0.1:PORT,...").</summary>
    public string BootstrapServers { get; }

    /// <summary>The transport URI for config key <c>transport.bus</c>: <c>kafka://127.0.0.1:PORT,...</c>.</summary>
    public string TransportUri => "kafka://" + BootstrapServers;

    /// <summary>The in-process cluster (null for a helper process), e.g. to create topics.</summary>
    public MockKafkaCluster? Cluster => _cluster;

    /// <summary>
    /// Runs a fault command (<see cref="MockKafkaControl"/>: "down 2", "leader prompts 0 3", "errors produce
    /// NotLeaderForPartition") on the cluster, in this process or through the helper process's stdin; returns its
    /// reply, "ok" or "error: ...".
    /// </summary>
    public string Control(string command)
    {
        if (_cluster is not null) return MockKafkaControl.Execute(_cluster, command);
        lock (_process!)
        {
            _process.StandardInput.WriteLine(command);
            _process.StandardInput.Flush();
            var reply = _process.StandardOutput.ReadLineAsync();
            return reply.Wait(TimeSpan.FromSeconds(30)) ? reply.Result ?? "error: the helper process ended" : "error: no reply within 30 s";
        }
    }

    /// <summary>Bus options for this cluster with <see cref="FastGroupSettings"/>.</summary>
    public KafkaEventBusOptions BusOptions() =>
        new() { BootstrapServers = BootstrapServers, Settings = FastGroupSettings };

    /// <summary>Starts a mock cluster in this process.</summary>
    /// <param name="brokers">How many brokers.</param>
    public static KafkaMock StartInProcess(int brokers = 1)
    {
        var cluster = new MockKafkaCluster(brokers, TestRebalanceDelay);
        return new KafkaMock(cluster.BootstrapServers, cluster, null);
    }

    /// <summary>
    /// Starts <c>onlinerl kafka-mock</c> (the built CLI, see <see cref="FindCli"/>) and reads its bootstrap
    /// address from its first stdout line. Disposing closes its stdin (it exits) and kills it if it lingers.
    /// </summary>
    /// <param name="onlinerlDll">Path of onlinerl.dll.</param>
    /// <param name="brokers">How many brokers.</param>
    /// <param name="partitions">Partitions of the pipeline's topics.</param>
    /// <exception cref="InvalidOperationException">The process exited or printed no address within 30 s.</exception>
    public static KafkaMock StartProcess(string onlinerlDll, int brokers = 1, int partitions = 4)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     onlinerlDll, "kafka-mock", "--brokers", brokers.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--partitions", partitions.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--rebalance-delay-ms", ((int)TestRebalanceDelay.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
                 })
            info.ArgumentList.Add(argument);
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start dotnet " + onlinerlDll);
        var stderr = process.StandardError.ReadToEndAsync();
        var firstLine = process.StandardOutput.ReadLineAsync();
        if (!firstLine.Wait(TimeSpan.FromSeconds(30)) || string.IsNullOrWhiteSpace(firstLine.Result))
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            var error = stderr.Wait(TimeSpan.FromSeconds(5)) ? stderr.Result : "";
            process.Dispose();
            throw new InvalidOperationException($"onlinerl kafka-mock printed no bootstrap address: {error}");
        }
        return new KafkaMock(firstLine.Result.Trim(), null, process);
    }

    /// <summary>
    /// The onlinerl.dll built in the same configuration as the running test (services/OnlineRl.Cli/bin/CONFIG/),
    /// or null with the reason when it has not been built.
    /// </summary>
    public static string? FindCli(out string reason)
    {
        // The tests run from tests/X/bin/CONFIG/TFM/.
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = output.Name;
        var configuration = output.Parent?.Name ?? "Debug";
        var repository = output.Parent?.Parent?.Parent?.Parent?.Parent?.FullName ?? ".";
        var path = Path.Combine(repository, "services", "OnlineRl.Cli", "bin", configuration, framework, "onlinerl.dll");
        reason = File.Exists(path) ? "" : $"needs the built CLI ({path} is missing; build services/OnlineRl.Cli in {configuration})";
        return File.Exists(path) ? path : null;
    }

    /// <summary>Stops the cluster (in-process) or the helper process (stdin closed, then killed after 10 s).</summary>
    public void Dispose()
    {
        _cluster?.Dispose();
        if (_process is null) return;
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(10))) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        finally
        {
            _process.Dispose();
        }
    }
}
