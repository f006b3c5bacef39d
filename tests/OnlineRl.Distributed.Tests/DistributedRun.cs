using System.Globalization;
using System.Text.RegularExpressions;
using OnlineRl.Pipeline;
using Xunit.Abstractions;

namespace OnlineRl.Distributed.Tests;

/// <summary>Skips when a distributed run cannot be started here (no redis-server, CLI not built).</summary>
public sealed class DistributedFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> with the reason when something is missing.</summary>
    public DistributedFactAttribute()
    {
        if (RedisServer.MissingReason is { } redis) Skip = redis;
        else if (KafkaMock.FindCli(out var reason) is null) Skip = reason;
    }
}

/// <summary>
/// A policy trained once by <c>onlinerl sft</c> to a low accuracy: the starting checkpoint every distributed
/// run of this collection loads (so no service repeats the warm start).
/// </summary>
public sealed class SftCheckpointFixture : IDisposable
{
    /// <summary>SFT steps: the same low starting accuracy as the proof-of-learning tests (about 28%).</summary>
    public const int SftSteps = 200;

    private readonly string root = Path.Combine(Path.GetTempPath(), $"onlinerl-distributed-{Guid.NewGuid():N}");

    /// <summary>Trains the checkpoint (when the tests can run at all).</summary>
    public SftCheckpointFixture()
    {
        Cli = KafkaMock.FindCli(out _) ?? "";
        Checkpoint = Path.Combine(root, "sft");
        if (Cli.Length == 0 || RedisServer.MissingReason is not null) return;
        using var sft = ServiceProcess.Start("sft", Cli, ["sft", "--out", Checkpoint, "--steps", SftSteps.ToString(CultureInfo.InvariantCulture), "--seed", "1", "--row-length", "64"],
            Path.Combine(root, "sft.log"), new Dictionary<string, string> { ["ONLINERL_NUM_THREADS"] = "2" });
        // About a minute on 2 idle cores; generous because a machine shared with other jobs has taken ten times that.
        if (!sft.WaitForExitAsync(TimeSpan.FromMinutes(20)).GetAwaiter().GetResult() || sft.ExitCode != 0)
            throw new InvalidOperationException($"onlinerl sft failed:\n{sft.Tail()}");
    }

    /// <summary>Path of onlinerl.dll.</summary>
    public string Cli { get; }

    /// <summary>The SFT checkpoint directory (model + tokenizer).</summary>
    public string Checkpoint { get; }

    /// <summary>Removes the temporary directory.</summary>
    public void Dispose()
    {
        try { Directory.Delete(root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The distributed tests share one SFT checkpoint and run one at a time (each uses both cores).</summary>
[CollectionDefinition(Name)]
public sealed class DistributedCollection : ICollectionFixture<SftCheckpointFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "distributed";
}

/// <summary>
/// One distributed run: a config file, a ledger and a learner state directory in a temp folder, and the
/// service processes started on it. Disposal stops every process and prints their logs' tails on failure.
/// </summary>
public sealed partial class DistributedRun : IDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly string cli;
    private readonly ITestOutputHelper output;
    private readonly List<ServiceProcess> processes = [];
    private readonly Dictionary<string, int> metricsPorts = [];

    /// <summary>Writes the run's config: GRPO over the given transports.</summary>
    /// <param name="maxPolicyLag">0: generation and learning strictly alternate; more: they overlap with that lag.</param>
    public DistributedRun(SftCheckpointFixture start, string busUri, string weightsUri, int steps, int promptsPerStep, ITestOutputHelper output,
        IReadOnlyDictionary<string, string>? kafkaSettings = null, int maxPolicyLag = 0)
    {
        cli = start.Cli;
        this.output = output;
        Steps = steps;
        PromptsPerStep = promptsPerStep;
        Root = Path.Combine(Path.GetTempPath(), $"onlinerl-run-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
        var kafka = kafkaSettings is null ? "" : "  kafka:\n" + string.Concat(kafkaSettings.Select(kv => $"    {kv.Key}: \"{kv.Value}\"\n"));
        File.WriteAllText(ConfigPath, $"""
            run_id: distributed-test
            output_dir: {Path.Combine(Root, "out")}
            seed: 1
            threads: 1
            model:
              checkpoint: {start.Checkpoint}
            task:
              kind: addition
              max_digits: 3
              eval_size: 300
              max_prompts: {steps * promptsPerStep}
            sft:
              steps: 0
            sampling:
              group_size: 8
              temperature: 1.0
              max_new_tokens: 6
            algorithm:
              name: grpo
              learning_rate: 0.0001
              epochs: 2
              filter_equal_groups: true
              warmup_steps: 20
              prompts_per_step: {promptsPerStep}
              kl_estimator: k3
              kl_beta: 0.02
            train:
              steps: {steps}
              eval_every: 0
              overlap: {(maxPolicyLag > 0 ? "true" : "false")}
              max_policy_lag: {maxPolicyLag}
              checkpoint_every: 1
              state_dir: {Path.Combine(Root, "learner-state")}
              ledger_dir: {LedgerDir}
            transport:
              bus: {busUri}
              weights: {weightsUri}
            {kafka}
            """);
    }

    /// <summary>The run's folder (config, ledger, state, process logs).</summary>
    public string Root { get; }

    /// <summary>Learner updates the run makes.</summary>
    public int Steps { get; }

    /// <summary>Prompts per update.</summary>
    public int PromptsPerStep { get; }

    /// <summary>Every process started so far (restarted services appear once per start).</summary>
    public IReadOnlyList<ServiceProcess> Processes => processes;

    /// <summary>The run's config file.</summary>
    public string ConfigPath => Path.Combine(Root, "config.yaml");

    /// <summary>The per-sample ledger's folder.</summary>
    public string LedgerDir => Path.Combine(Root, "ledger");

    /// <summary>Starts <c>onlinerl SERVICE</c> as <paramref name="id"/> with its own metrics port.</summary>
    public ServiceProcess Start(string service, string id)
    {
        var port = LoopbackPort.Free();
        metricsPorts[id] = port;
        var process = ServiceProcess.Start(id, cli,
            [service, "--config", ConfigPath, "--service.id", id, "--service.metrics_port", port.ToString(CultureInfo.InvariantCulture)],
            Path.Combine(Root, "logs", id + ".log"), new Dictionary<string, string> { ["ONLINERL_NUM_THREADS"] = "1" });
        processes.Add(process);
        return process;
    }

    /// <summary>Starts the learner, a scorer, the given generators and the feeder.</summary>
    public (ServiceProcess Learner, List<ServiceProcess> Generators) StartAll(params string[] generators)
    {
        var learner = Start("learner", "learner");
        Start("scorer", "scorer-0");
        var started = generators.Select(id => Start("generator", id)).ToList();
        Start("feeder", "feeder-0");
        return (learner, started);
    }

    /// <summary>The newest learner step a learner process has printed (0 before the first).</summary>
    public static long LatestStep(ServiceProcess learner) =>
        learner.Lines.Select(line => StepLine().Match(line)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))
            .DefaultIfEmpty(0).Max();

    /// <summary>Waits until the learner has printed step <paramref name="step"/> or later.</summary>
    public static Task WaitForStepAsync(ServiceProcess learner, long step, TimeSpan timeout) =>
        learner.WaitForLineAsync(line => StepLine().Match(line) is { Success: true } m && long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) >= step, timeout);

    /// <summary>The mean rewards the learner printed, step by step.</summary>
    public static List<double> Rewards(IEnumerable<ServiceProcess> learners) =>
        learners.SelectMany(l => l.Lines).Select(line => StepLine().Match(line)).Where(m => m.Success)
            .Select(m => double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)).ToList();

    /// <summary>The KL to the reference the learner printed, step by step.</summary>
    public static List<double> Kls(IEnumerable<ServiceProcess> learners) =>
        learners.SelectMany(l => l.Lines).Select(line => KlField().Match(line)).Where(m => m.Success)
            .Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();

    /// <summary>A held-out accuracy the learner printed ("before RL" or "after RL").</summary>
    public static double Accuracy(ServiceProcess learner, string when)
    {
        var line = learner.Lines.LastOrDefault(l => l.Contains($"held-out accuracy {when}", StringComparison.Ordinal))
                   ?? throw new InvalidOperationException($"{learner.Name} printed no held-out accuracy {when}:\n{learner.Tail()}");
        return double.Parse(Percent().Match(line).Groups[1].Value, CultureInfo.InvariantCulture) / 100;
    }

    /// <summary>The newest weights version the learner printed in its final line.</summary>
    public static long FinalVersion(ServiceProcess learner)
    {
        var line = learner.Lines.LastOrDefault(l => FinalLine().IsMatch(l)) ?? throw new InvalidOperationException($"{learner.Name} printed no final line:\n{learner.Tail()}");
        return long.Parse(FinalLine().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>The weights version a generator reports on its /metrics (null when unreachable).</summary>
    public async Task<long?> HeldVersionAsync(string generatorId) =>
        await GeneratorMetricAsync(generatorId, "onlinerl_generator_weights_version") is { } version ? (long)version : null;

    /// <summary>
    /// A generator's sample of a metric (the series labelled with its id) from its /metrics, e.g.
    /// <c>onlinerl_generator_weights_rejected_total</c>; null when unreachable or absent.
    /// </summary>
    public async Task<double?> GeneratorMetricAsync(string generatorId, string metric)
    {
        try
        {
            var text = await Http.GetStringAsync($"http://127.0.0.1:{metricsPorts[generatorId]}/metrics");
            var match = text.Split('\n').Select(l => MetricLine().Match(l))
                .FirstOrDefault(m => m.Success && m.Groups[1].Value == metric && m.Groups[2].Value == generatorId);
            return match is null ? null : double.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>Waits until every listed generator reports <paramref name="version"/> on /metrics; returns what they hold.</summary>
    public async Task<Dictionary<string, long?>> WaitForGeneratorsOnAsync(IEnumerable<string> generatorIds, long version, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var held = new Dictionary<string, long?>();
            foreach (var id in generatorIds) held[id] = await HeldVersionAsync(id);
            if (held.Values.All(v => v == version) || DateTime.UtcNow > deadline) return held;
            await Task.Delay(250);
        }
    }

    /// <summary>Stops every process still running (SIGTERM, then SIGKILL) and checks the ledger.</summary>
    public async Task<LedgerReport> FinishAsync()
    {
        foreach (var process in processes.Where(p => !p.HasExited)) await process.TerminateAsync(TimeSpan.FromSeconds(15));
        var report = Ledger.Verify(LedgerDir);
        output.WriteLine(report.ToString());
        return report;
    }

    /// <summary>
    /// Prints every process's last lines and the start of any exception it printed (for the test log), stops
    /// them, keeps their logs under artifacts/distributed-logs/ and removes the folder.
    /// </summary>
    public void Dispose()
    {
        foreach (var process in processes)
        {
            output.WriteLine($"--- {process.Name} (exited: {process.HasExited})");
            if (process.FirstException() is { } exception) output.WriteLine(exception);
            output.WriteLine(process.Tail(12));
            process.Dispose();
        }
        if (KeepFiles(Path.Combine(Root, "logs"), Path.GetFileName(Root)) is { } kept) output.WriteLine($"logs kept in {kept}");
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    /// <summary>
    /// Copies the files of <paramref name="directory"/> to artifacts/distributed-logs/<paramref name="name"/> (they outlive
    /// the test's temp folder, for a look after a failure); returns that folder, or null when there was nothing to keep.
    /// </summary>
    public static string? KeepFiles(string directory, string name)
    {
        if (!Directory.Exists(directory)) return null;
        var kept = RepoPaths.Of("artifacts", "distributed-logs", name);
        Directory.CreateDirectory(kept);
        foreach (var file in Directory.GetFiles(directory)) File.Copy(file, Path.Combine(kept, Path.GetFileName(file)), overwrite: true);
        return kept;
    }


    [GeneratedRegex(@"\bstep\s+(\d+)\s+reward\s+(-?[\d.]+|NaN)")]
    private static partial Regex StepLine();

    [GeneratedRegex(@"\bstep\s+\d+\s+reward\s+\S+\s+loss\s+\S+\s+kl\s+(\S+)")]
    private static partial Regex KlField();

    [GeneratedRegex(@"([\d.]+)\s?%")]
    private static partial Regex Percent();

    [GeneratedRegex(@"steps, weights v(\d+)")]
    private static partial Regex FinalLine();

    [GeneratedRegex("""^(\w+)\{[^}]*generator="([^"]+)"[^}]*\}\s+(\S+)""")]
    private static partial Regex MetricLine();
}
