using System.Globalization;
using OnlineRl.Contracts;
using OnlineRl.Messaging.Kafka;
using OnlineRl.Pipeline;
using OnlineRl.Redis;
using OnlineRl.Weights;
using StackExchange.Redis;

namespace OnlineRl.Cli;

/// <summary>What `onlinerl soak` was asked to do.</summary>
/// <param name="Minutes">How long the run goes on under faults (the drain at the end comes on top).</param>
/// <param name="Bus">"kafka" (librdkafka's mock cluster, three brokers, in this process) or "redis" (Redis Streams).</param>
/// <param name="FaultEvery">Time between two faults.</param>
/// <param name="SampleEvery">Time between two samples of memory, handles, Redis keys and stream lengths.</param>
/// <param name="OutputDirectory">Where the config, ledger, learner state, logs, samples and report go (must be empty or new).</param>
/// <param name="PromptsPerStep">Prompts per learner update.</param>
internal sealed record SoakSettings(double Minutes, string Bus, TimeSpan FaultEvery, TimeSpan SampleEvery, string OutputDirectory, int PromptsPerStep);

/// <summary>
/// `onlinerl soak`: the distributed run (feeder, two generators, a scorer, the learner as separate processes) on
/// loopback for a set time while faults come one after another (Kafka brokers down, leader changes, request errors;
/// kill -9 of every kind of service; new consumers joining; redis-server killed with -9), sampling each process's
/// memory and open handles, Redis's keys and stream lengths. At the end the feeder stops, the learner is restarted to
/// train exactly what was fed, and the ledger must show every prompt trained once and nothing missing, the
/// generators must hold the newest weights, and Redis must have stayed within its bounds. Writes
/// <c>soak-report.md</c> and <c>soak-samples.csv</c>; exit code 0 when all of that holds.
/// </summary>
internal static class SoakCommand
{
    public static async Task<int> RunAsync(Options options)
    {
        var minutes = options.Double("minutes", 20);
        var bus = options.String("bus", "kafka");
        // By default every kind of fault comes at least twice (eight kinds on Kafka): 60 s in a 20-minute soak.
        var faultEvery = options.Double("fault-every-seconds", Math.Clamp(minutes * 3, 10, 120));
        var sampleEvery = options.Double("sample-seconds", 60);
        var output = options.String("out", "runs/soak");
        var promptsPerStep = options.Int("prompts-per-step", 8);
        options.RejectUnknown();
        if (!(minutes > 0)) throw new UsageException("--minutes must be positive");
        if (bus is not ("kafka" or "redis")) throw new UsageException($"--bus '{bus}' is not kafka or redis");
        if (!(faultEvery >= 5)) throw new UsageException("--fault-every-seconds must be at least 5");
        if (!(sampleEvery >= 1)) throw new UsageException("--sample-seconds must be at least 1");
        if (promptsPerStep < 1) throw new UsageException("--prompts-per-step must be positive");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new UsageException($"--out {output} is not empty (a soak starts from nothing)");
        var settings = new SoakSettings(minutes, bus, TimeSpan.FromSeconds(faultEvery), TimeSpan.FromSeconds(sampleEvery), Path.GetFullPath(output), promptsPerStep);
        await using var soak = new Soak(settings, line => Console.WriteLine(line));
        try
        {
            return await soak.RunAsync() ? 0 : 1;
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            // A service that never started or died before its first step: there is nothing to judge.
            Console.Error.WriteLine($"soak failed: {e.Message}");
            return 1;
        }
    }
}

/// <summary>One soak run: the servers, the service processes, the faults, the samples and the verdict.</summary>
internal sealed class Soak(SoakSettings settings, Action<string> print) : IAsyncDisposable
{
    private const string RunId = "soak";
    private const int Partitions = 4;
    private const int GeneratorsAtOnce = 2;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromMinutes(10);
    /// <summary>How long a version no generator holds any more may wait for the learner's next prune.</summary>
    private static readonly TimeSpan PruneWindow = TimeSpan.FromMinutes(1);

    private readonly string cli = Path.Combine(AppContext.BaseDirectory, "onlinerl.dll");
    private readonly DateTime started = DateTime.UtcNow;
    private readonly List<ServiceProcess> processes = [];
    private readonly Dictionary<string, ServiceProcess> live = new(StringComparer.Ordinal);
    private readonly List<SoakFault> faults = [];
    private readonly List<SoakSample> samples = [];
    private readonly List<string> unexpectedExits = [];
    private readonly List<(double Minute, long Version)> oldestHeld = [];
    private readonly Lock gate = new();
    private RedisServerProcess? redis;
    private MockKafkaCluster? kafka;
    private ConnectionMultiplexer? redisClient;
    private int nextGenerator = GeneratorsAtOnce;
    private int nextScorer = 1;

    private string ConfigPath => Path.Combine(settings.OutputDirectory, "soak.yaml");
    private string LedgerDirectory => Path.Combine(settings.OutputDirectory, "ledger");
    private string WeightsPrefix => $"onlinerl:{RunId}:weights";
    private double Minute => (DateTime.UtcNow - started).TotalMinutes;
    private bool OnKafka => settings.Bus == "kafka";

    public async Task<bool> RunAsync()
    {
        Directory.CreateDirectory(settings.OutputDirectory);
        redis = RedisServerProcess.Start(persistent: true);
        // Admin commands (INFO for Redis's memory) are allowed on the soak's own connection only.
        var redisOptions = RedisConnection.Options(redis.Address);
        redisOptions.AllowAdmin = true;
        redisClient = await ConnectionMultiplexer.ConnectAsync(redisOptions);
        if (OnKafka)
        {
            kafka = new MockKafkaCluster(brokers: 3, initialRebalanceDelay: TimeSpan.FromMilliseconds(200));
            foreach (var topic in Topics.All) kafka.CreateTopic(topic, Partitions);
        }
        WriteConfig();
        Log($"soak of {settings.Minutes} min over {(OnKafka ? $"Kafka (mock cluster, 3 brokers, {kafka!.BootstrapServers})" : "Redis Streams")}, weights in Redis ({redis.Address}); a fault every {settings.FaultEvery.TotalSeconds:F0} s; output {settings.OutputDirectory}");

        var learner = Start("learner", "learner");
        Start("scorer", "scorer-0");
        for (var g = 0; g < GeneratorsAtOnce; g++) Start("generator", $"generator-{g}");
        Start("feeder", "feeder-0");
        await learner.WaitForLineAsync(line => line.Contains(" reward ", StringComparison.Ordinal), StartTimeout); // its first step
        Log("the learner made its first step: faults begin");

        using var sampling = new CancellationTokenSource();
        var sampler = SampleLoopAsync(sampling.Token);
        var end = DateTime.UtcNow + TimeSpan.FromMinutes(settings.Minutes);
        var faultIndex = 0;
        while (DateTime.UtcNow + settings.FaultEvery <= end)
        {
            await Task.Delay(settings.FaultEvery);
            WatchForUnexpectedExits();
            await InjectAsync(faultIndex++);
        }
        var rest = end - DateTime.UtcNow;
        if (rest > TimeSpan.Zero) await Task.Delay(rest);
        WatchForUnexpectedExits();

        var drained = await DrainAsync();
        await sampling.CancelAsync();
        await sampler;
        var newest = await NewestVersionAsync();
        var held = await GeneratorsReachAsync(newest);
        foreach (var process in live.Values.ToList()) await StopAsync(process);
        var ledger = Ledger.Verify(LedgerDirectory);
        var report = SoakReport.Write(settings, started, ledger, faults, samples, unexpectedExits, drained, newest, held, await KeysPerVersionAsync(newest), print);
        Log($"wrote {Path.Combine(settings.OutputDirectory, "soak-report.md")} and soak-samples.csv");
        return report;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in processes)
        {
            if (!process.HasExited) await process.TerminateAsync(TimeSpan.FromSeconds(10));
            process.Dispose();
        }
        redisClient?.Dispose();
        kafka?.Dispose();
        redis?.Dispose();
    }

    private WeightStore Weights() => new(new RedisBlobStore(redisClient!.GetDatabase()), new WeightStoreOptions { Prefix = WeightsPrefix });

    /// <summary>Redis keys one weight version takes: its chunks and its manifest.</summary>
    private async Task<int> KeysPerVersionAsync(long version) =>
        version == 0 ? 0 : (await Weights().ManifestAsync(version)).Tensors.Sum(t => t.Chunks.Length) + 1;

    private void WriteConfig()
    {
        var kafkaSettings = OnKafka
            ? """
                kafka:
                  heartbeat.interval.ms: "250"
                  session.timeout.ms: "6000"
                  topic.metadata.refresh.interval.ms: "1000"
                  fetch.wait.max.ms: "10"
              """
            : "";
        File.WriteAllText(ConfigPath, $"""
            run_id: {RunId}
            output_dir: {Path.Combine(settings.OutputDirectory, "out")}
            seed: 1
            threads: 1
            task:
              kind: addition
              max_digits: 3
              eval_size: 0
            sft:
              steps: 0
            sampling:
              group_size: 8
              max_new_tokens: 6
            algorithm:
              name: grpo
              prompts_per_step: {settings.PromptsPerStep}
            train:
              steps: 0
              time_limit_minutes: {(settings.Minutes + DrainTimeout.TotalMinutes + 30).ToString(CultureInfo.InvariantCulture)}
              eval_every: 0
              overlap: true
              max_policy_lag: 2
              checkpoint_every: 1
              state_dir: {Path.Combine(settings.OutputDirectory, "learner-state")}
              ledger_dir: {LedgerDirectory}
            transport:
              bus: {(OnKafka ? "kafka://" + kafka!.BootstrapServers : redis!.Address)}
              weights: {redis!.Address}
            {kafkaSettings}
            """);
    }

    private ServiceProcess Start(string service, string id, params string[] extra)
    {
        var process = ServiceProcess.Start(id, cli, [service, "--config", ConfigPath, "--service.id", id, "--service.metrics_port", "0", .. extra],
            Path.Combine(settings.OutputDirectory, "logs", id + ".log"), new Dictionary<string, string> { ["ONLINERL_NUM_THREADS"] = "1" });
        lock (gate)
        {
            processes.Add(process);
            live[id] = process;
        }
        return process;
    }

    private void Kill(ServiceProcess process)
    {
        process.Kill();
        lock (gate) live.Remove(process.Name);
    }

    private async Task StopAsync(ServiceProcess process)
    {
        await process.TerminateAsync(TimeSpan.FromSeconds(20));
        lock (gate) live.Remove(process.Name);
    }

    /// <summary>A service that ended without the soak stopping it: recorded, and started again so the run goes on.</summary>
    private void WatchForUnexpectedExits()
    {
        List<ServiceProcess> ended;
        lock (gate) ended = live.Values.Where(p => p.HasExited).ToList();
        foreach (var process in ended)
        {
            var why = process.FirstException(count: 1)?.Trim() ?? process.Lines.LastOrDefault();
            var what = $"{Minute:F1} min: {process.Name} exited by itself with {process.ExitCode}: {why}";
            unexpectedExits.Add(what);
            Log("UNEXPECTED " + what);
            lock (gate) live.Remove(process.Name);
            Start(SoakAnalysis.ServiceOf(process.Name), process.Name);
        }
    }

    /// <summary>The faults, in turn: Kafka's (on the Kafka bus), then a kill -9 of each kind of service, then of redis-server.</summary>
    private async Task InjectAsync(int index)
    {
        var kinds = OnKafka
            ? new[] { "broker", "leader", "errors", "generator", "scorer", "feeder", "learner", "redis" }
            : ["generator", "scorer", "feeder", "learner", "redis"];
        var kind = kinds[index % kinds.Length];
        var round = index / kinds.Length;
        switch (kind)
        {
            case "broker":
                var broker = round % 3 + 1;
                // Down long enough for sessions and requests to time out, but back before the next fault.
                var downFor = TimeSpan.FromSeconds(Math.Min(10, settings.FaultEvery.TotalSeconds / 2));
                Record(kind, $"Kafka broker {broker} down for {downFor.TotalSeconds:F0} s, then up");
                kafka!.SetBrokerDown(broker);
                await Task.Delay(downFor);
                kafka.SetBrokerUp(broker);
                break;
            case "leader":
                Record(kind, "leader change: every partition of every topic moves to another broker");
                foreach (var topic in Topics.All)
                    for (var p = 0; p < Partitions; p++) kafka!.SetPartitionLeader(topic, p, (p + round + 1) % 3 + 1);
                break;
            case "errors":
                Record(kind, "produce, fetch and offset-commit requests answered with errors (not leader, timed out, disconnect)");
                kafka!.PushRequestErrors(KafkaApi.Produce, Confluent.Kafka.ErrorCode.NotLeaderForPartition, Confluent.Kafka.ErrorCode.RequestTimedOut,
                    Confluent.Kafka.ErrorCode.Local_Transport);
                kafka.PushRequestErrors(KafkaApi.Fetch, Confluent.Kafka.ErrorCode.NotLeaderForPartition, Confluent.Kafka.ErrorCode.Local_Transport);
                kafka.PushRequestErrors(KafkaApi.OffsetCommit, Confluent.Kafka.ErrorCode.NotCoordinatorForGroup, Confluent.Kafka.ErrorCode.RequestTimedOut);
                break;
            case "generator":
                var victim = Live("generator").OrderBy(p => p.Name, StringComparer.Ordinal).First();
                var successor = $"generator-{nextGenerator++}";
                Record(kind, $"{victim.Name} killed (kill -9); {successor} joins");
                Kill(victim);
                Start("generator", successor);
                break;
            case "scorer":
                var extra = Live("scorer").Where(p => p.Name != "scorer-0").ToList();
                if (extra.Count > 0)
                {
                    Record(kind, $"{extra[0].Name} killed (kill -9): the scorers' group rebalances after the session timeout");
                    Kill(extra[0]);
                }
                else
                {
                    var joining = $"scorer-{nextScorer++}";
                    Record(kind, $"{joining} joins: the scorers' group rebalances");
                    Start("scorer", joining);
                }
                break;
            case "feeder":
            case "learner":
                var service = Live(kind).Single();
                Record(kind, $"{service.Name} killed (kill -9) and restarted");
                Kill(service);
                Start(kind, service.Name);
                break;
            case "redis":
                Record(kind, "redis-server killed (kill -9), restarted from its append-only file 2 s later");
                redis!.Kill();
                await Task.Delay(TimeSpan.FromSeconds(2));
                redis.Restart();
                break;
        }
    }

    private List<ServiceProcess> Live(string service)
    {
        lock (gate) return live.Values.Where(p => SoakAnalysis.ServiceOf(p.Name) == service && !p.HasExited).ToList();
    }

    private void Record(string kind, string fault)
    {
        faults.Add(new SoakFault(Minute, kind, fault));
        Log("fault: " + fault);
    }

    /// <summary>
    /// Ends the feed and lets the learner train exactly what was fed: the feeder stops, the learner stops gracefully and
    /// starts again knowing the number of prompts published (the ledger's count), trains what is left and exits.
    /// </summary>
    private async Task<bool> DrainAsync()
    {
        foreach (var feeder in Live("feeder")) await StopAsync(feeder);
        var published = Ledger.Verify(LedgerDirectory).Published;
        Log($"feeder stopped after {published} prompts; the learner trains the rest and stops");
        foreach (var learner in Live("learner")) await StopAsync(learner);
        var last = Start("learner", "learner", "--task.max_prompts", published.ToString(CultureInfo.InvariantCulture));
        var done = await last.WaitForExitAsync(DrainTimeout);
        lock (gate) live.Remove(last.Name);
        if (!done) Log($"the learner did not finish within {DrainTimeout.TotalMinutes} min");
        return done && last.ExitCode == 0;
    }

    private async Task<long> NewestVersionAsync() => await Weights().CurrentVersionAsync() ?? 0;

    /// <summary>Waits up to a minute for every live generator to report the newest version; returns what they hold.</summary>
    private async Task<IReadOnlyDictionary<string, long>> GeneratorsReachAsync(long newest)
    {
        var registry = new GeneratorRegistry(redisClient!.GetDatabase(), WeightsPrefix);
        var generators = Live("generator").Select(g => g.Name).ToList();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            var holders = await registry.LiveHoldersAsync();
            var held = generators.ToDictionary(g => g, g => holders.GetValueOrDefault(g));
            if (held.Values.All(v => v == newest) || DateTime.UtcNow > deadline) return held;
            await Task.Delay(500);
        }
    }

    private async Task SampleLoopAsync(CancellationToken stop)
    {
        try
        {
            while (true)
            {
                await SampleAsync();
                await Task.Delay(settings.SampleEvery, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>RSS and open file descriptors of every live service (from /proc), Redis's keys, memory and stream lengths.</summary>
    private async Task SampleAsync()
    {
        var minute = Minute;
        List<ServiceProcess> running;
        lock (gate) running = live.Values.Where(p => !p.HasExited).ToList();
        foreach (var process in running)
            if (ProcessStats.Read(process.Id) is { } stats)
                samples.Add(new SoakSample(minute, process.Name, process.Id, stats.RssMiB, stats.OpenHandles));
        try
        {
            var server = redisClient!.GetServers()[0];
            var keys = await server.DatabaseSizeAsync();
            var memory = (await server.InfoAsync("memory")).SelectMany(g => g).First(kv => kv.Key == "used_memory_rss").Value;
            var versions = 0;
            await foreach (var _ in server.KeysAsync(pattern: $"{WeightsPrefix}:v*:manifest")) versions++;
            // The store keeps the newest few versions and every version a generator reported holding (a report lives
            // for the registry's time-to-live after its generator died), plus one being written. The learner prunes
            // after its updates, so a version whose report expired may stay until the next update (seconds, longer
            // while the learner or Redis restarts): the bound counts every version held at a sample of the last minute.
            var current = await NewestVersionAsync();
            var registry = new GeneratorRegistry(redisClient.GetDatabase(), WeightsPrefix);
            oldestHeld.Add((minute, (await registry.HeldVersionsAsync()).DefaultIfEmpty(current).Min()));
            var held = oldestHeld.Where(h => h.Minute >= minute - PruneWindow.TotalMinutes).Min(h => h.Version);
            var versionBound = new WeightStoreOptions().KeepNewest + 1 + (int)Math.Max(0, current - held);
            long longestStream = 0;
            if (!OnKafka)
                foreach (var topic in Topics.All)
                    longestStream = Math.Max(longestStream, await redisClient.GetDatabase().StreamLengthAsync($"onlinerl:stream:{topic}"));
            samples.Add(new SoakSample(minute, SoakAnalysis.RedisProcess, 0, long.Parse(memory, CultureInfo.InvariantCulture) / (1024.0 * 1024), 0,
                keys, versions, versionBound, OnKafka ? null : longestStream));
        }
        catch (RedisException e)
        {
            Log($"no Redis sample at {minute:F1} min ({e.Message}): it is down (a fault)");
        }
    }

    private void Log(string line) => print($"[{Minute,5:F1} min] {line}");
}

/// <summary>Memory and handles of a process, from Linux's /proc.</summary>
internal static class ProcessStats
{
    /// <summary>(resident MiB, open file descriptors), or null when the process is gone or /proc is missing.</summary>
    public static (double RssMiB, int OpenHandles)? Read(int pid)
    {
        try
        {
            var rssLine = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            if (rssLine is null) return null;
            var kib = long.Parse(rssLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            return (kib / 1024.0, Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
