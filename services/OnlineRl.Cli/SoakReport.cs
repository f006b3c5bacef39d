using System.Globalization;
using System.Text;
using OnlineRl.Messaging;
using OnlineRl.Pipeline;

namespace OnlineRl.Cli;

/// <summary>A fault the soak injected.</summary>
/// <param name="Minute">Minutes since the soak started.</param>
/// <param name="Kind">A short name: broker, leader, errors, generator, scorer, feeder, learner, redis.</param>
/// <param name="What">What was done, in words.</param>
internal sealed record SoakFault(double Minute, string Kind, string What);

/// <summary>The verdict and the report of an `onlinerl soak` run: <c>soak-report.md</c> and <c>soak-samples.csv</c>.</summary>
internal static class SoakReport
{
    /// <summary>Keys besides the weight versions: the current-version pointer, the generator registry (a set and one key
    /// per generator reporting), the feeder's position and, on Redis Streams, the topic streams.</summary>
    private const int OtherKeys = 32;

    /// <summary>Writes the report and the samples; returns the verdict (true: every check held).</summary>
    public static bool Write(SoakSettings settings, DateTime started, LedgerReport ledger, IReadOnlyList<SoakFault> faults, IReadOnlyList<SoakSample> samples,
        IReadOnlyList<string> unexpectedExits, bool drained, long newest, IReadOnlyDictionary<string, long> held, int keysPerVersion, Action<string> print)
    {
        var redis = samples.Where(s => s.Process == SoakAnalysis.RedisProcess).ToList();
        var trends = SoakAnalysis.Trends(samples);
        var timeline = SoakAnalysis.Timeline(Ledger.Entries(Path.Combine(settings.OutputDirectory, "ledger"), out _), started, settings.SampleEvery);
        var capacity = InProcessEventBusOptions.DefaultTopicCapacity;
        var failures = new List<string>();
        if (!ledger.Ok || ledger.Published == 0 || ledger.Published != ledger.Trained + ledger.DroppedStale) failures.Add($"ledger: {ledger}");
        if (!drained) failures.Add("the learner did not train what was fed and stop");
        if (held.Count == 0 || held.Values.Any(v => v != newest))
            failures.Add($"generators not on the newest version v{newest}: {string.Join(", ", held.Select(kv => $"{kv.Key} v{kv.Value}"))}");
        failures.AddRange(unexpectedExits.Select(e => "unexpected exit: " + e));
        failures.AddRange(trends.SelectMany(SoakAnalysis.Leaks));
        foreach (var sample in redis)
        {
            if (sample.WeightVersions > sample.WeightVersionBound)
                failures.Add($"{sample.Minute:F1} min: {sample.WeightVersions} weight versions stored, more than the {sample.WeightVersionBound} the store may keep");
            if (sample.RedisKeys > (long)sample.WeightVersionBound * keysPerVersion + OtherKeys)
                failures.Add($"{sample.Minute:F1} min: {sample.RedisKeys} Redis keys, more than {sample.WeightVersionBound} versions x {keysPerVersion} keys + {OtherKeys}");
            if (sample.LongestStream > capacity)
                failures.Add($"{sample.Minute:F1} min: a stream holds {sample.LongestStream} entries, more than the topic capacity {capacity}");
        }

        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# Soak run: {settings.Minutes:0.#} min over {(settings.Bus == "kafka" ? "Kafka (librdkafka mock cluster, 3 brokers)" : "Redis Streams")}, weights in Redis");
        text.AppendLine();
        text.AppendLine($"- verdict: **{(failures.Count == 0 ? "PASSED" : "FAILED")}**");
        foreach (var failure in failures) text.AppendLine($"  - {failure}");
        text.AppendLine(CultureInfo.InvariantCulture, $"- ledger: {ledger}");
        text.AppendLine(CultureInfo.InvariantCulture, $"- newest weights v{newest}; generators hold {string.Join(", ", held.Select(kv => $"{kv.Key} v{kv.Value}"))}");
        text.AppendLine(CultureInfo.InvariantCulture, $"- {faults.Count} faults, one every {settings.FaultEvery.TotalSeconds:F0} s; a sample every {settings.SampleEvery.TotalSeconds:F0} s; {settings.PromptsPerStep} prompts per update");
        text.AppendLine();
        text.AppendLine("| minute | fault |").AppendLine("|---:|---|");
        foreach (var fault in faults) text.AppendLine(CultureInfo.InvariantCulture, $"| {fault.Minute:F1} | {fault.What} |");
        text.AppendLine();
        AppendTimeline(text, timeline, faults);
        AppendTrends(text, trends, redis);
        AppendOverTime(text, samples);
        text.AppendLine("## Redis");
        text.AppendLine();
        if (redis.Count > 0)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- keys: {redis.Min(s => s.RedisKeys)} to {redis.Max(s => s.RedisKeys)} (bound at each sample: allowed versions x {keysPerVersion} keys per version + {OtherKeys})");
            text.AppendLine(CultureInfo.InvariantCulture, $"- weight versions stored: at most {redis.Max(s => s.WeightVersions)}; allowed at the same samples: {redis.Min(s => s.WeightVersionBound)} to {redis.Max(s => s.WeightVersionBound)} (the newest 2, one being written, and all from the oldest a generator reported holding in the minute before)");
            if (settings.Bus == "redis")
                text.AppendLine(CultureInfo.InvariantCulture, $"- longest topic stream: at most {redis.Max(s => s.LongestStream)} entries (capacity {capacity})");
        }
        text.AppendLine();
        text.AppendLine("Every sample: `soak-samples.csv`. Service logs: `logs/`. Per-sample ledger: `ledger/` (`onlinerl ledger --dir ledger`).");
        File.WriteAllText(Path.Combine(settings.OutputDirectory, "soak-report.md"), text.ToString());

        var csv = new StringBuilder("minute,process,pid,rss_mib,open_handles,redis_keys,weight_versions,weight_version_bound,longest_stream\n");
        foreach (var s in samples)
            csv.AppendLine(CultureInfo.InvariantCulture, $"{s.Minute:F2},{s.Process},{s.Pid},{s.RssMiB:F1},{s.OpenHandles},{s.RedisKeys},{s.WeightVersions},{s.WeightVersionBound},{s.LongestStream}");
        File.WriteAllText(Path.Combine(settings.OutputDirectory, "soak-samples.csv"), csv.ToString());

        print(text.ToString());
        return failures.Count == 0;
    }

    private static void AppendTimeline(StringBuilder text, List<SoakStretch> timeline, IReadOnlyList<SoakFault> faults)
    {
        text.AppendLine("## Throughput and lag over time (from the ledger)");
        text.AppendLine();
        text.AppendLine("Trained and dropped count each prompt once (a step redone after a learner restart does not count again). Backlog: prompts");
        text.AppendLine("published and not yet trained or dropped at the end of the stretch. Policy lag: the weights version an update published");
        text.AppendLine("minus the version that generated its prompt (the learner's own lag, bounded by train.max_policy_lag, plus that one new");
        text.AppendLine("version). Redelivered: Kafka messages a group's readers were handed again.");
        text.AppendLine();
        text.AppendLine("| minutes | published | generated | trained | trained/min | dropped stale | backlog | policy lag mean / max | Kafka deliveries / redelivered | faults |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var s in timeline)
        {
            var inStretch = string.Join(", ", faults.Where(f => f.Minute >= s.FromMinute && f.Minute < s.ToMinute).Select(f => f.Kind));
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {s.FromMinute:F1}-{s.ToMinute:F1} | {s.Published} | {s.Generated} | {s.Trained} | {s.TrainedPerMinute:F0} | {s.DroppedStale} | {s.Backlog} | " +
                $"{(s.MeanPolicyLag is { } lag ? lag.ToString("F2", CultureInfo.InvariantCulture) : "-")} / {s.MaxPolicyLag} | {s.Deliveries} / {s.Redeliveries} | {inStretch} |");
        }
        text.AppendLine();
    }

    private static void AppendTrends(StringBuilder text, List<SoakTrend> trends, List<SoakSample> redis)
    {
        text.AppendLine("## Memory and open handles: trends");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Per service, its longest-lived process. Slopes are least-squares fits per minute over its samples after start-up (its");
        text.AppendLine(CultureInfo.InvariantCulture, $"first {SoakAnalysis.WarmUpMinutes:0.#} min, or first third), at least {SoakAnalysis.MinFittedSamples} (fewer: not judged). Flat: the fitted growth stays under");
        text.AppendLine(CultureInfo.InvariantCulture, $"{SoakAnalysis.RssLimitPerMinute} MiB/min (at least {SoakAnalysis.RssNoiseMiB} MiB allowed) and {SoakAnalysis.HandleLimitPerMinute} handle/min (at least {SoakAnalysis.HandleNoise} allowed).");
        text.AppendLine();
        text.AppendLine("| process | samples (fitted) | minutes fitted | RSS first / last / max (MiB) | RSS slope (MiB/min) | handles first / last / max | handles slope (/min) | flat |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var trend in trends)
        {
            var series = trend.Series;
            var flat = !trend.Judged ? "not judged" : SoakAnalysis.Leaks(trend).Any() ? "**no**" : "yes";
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {series[0].Process} (pid {series[0].Pid}) | {series.Count} ({trend.Fitted.Count}) | {trend.FittedMinutes:F1} | " +
                $"{series[0].RssMiB:F0} / {series[^1].RssMiB:F0} / {series.Max(s => s.RssMiB):F0} | {trend.RssSlope:+0.00;-0.00} | " +
                $"{series[0].OpenHandles} / {series[^1].OpenHandles} / {series.Max(s => s.OpenHandles)} | {trend.HandleSlope:+0.00;-0.00} | {flat} |"));
        }
        if (redis.Count > 0)
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| redis-server (used_memory_rss; keys instead of handles) | {redis.Count} | {redis[^1].Minute - redis[0].Minute:F1} | " +
                $"{redis[0].RssMiB:F0} / {redis[^1].RssMiB:F0} / {redis.Max(s => s.RssMiB):F0} | {SoakAnalysis.Slope(redis, s => s.RssMiB):+0.00;-0.00} | " +
                $"{redis[0].RedisKeys} / {redis[^1].RedisKeys} / {redis.Max(s => s.RedisKeys)} | {SoakAnalysis.Slope(redis, s => s.RedisKeys):+0.00;-0.00} | bounded below |"));
        text.AppendLine();
    }

    /// <summary>Every sample as a table: one row per sample time, one column per process (RSS MiB / open handles; "new" marks a restart).</summary>
    private static void AppendOverTime(StringBuilder text, IReadOnlyList<SoakSample> samples)
    {
        var names = samples.Select(s => s.Process).Distinct().ToList();
        text.AppendLine("## Memory and open handles over time");
        text.AppendLine();
        text.AppendLine("RSS in MiB / open file descriptors per process (redis-server: used_memory_rss / keys); \"new\" marks a process started since");
        text.AppendLine("the previous sample (a restart after a kill); empty: not running.");
        text.AppendLine();
        text.AppendLine("| minute | " + string.Join(" | ", names) + " |");
        text.AppendLine("|---:|" + string.Concat(names.Select(_ => "---:|")));
        var lastPid = new Dictionary<string, int>();
        foreach (var round in samples.GroupBy(s => s.Minute).OrderBy(g => g.Key))
        {
            var cells = names.Select(name =>
            {
                if (round.FirstOrDefault(s => s.Process == name) is not { } s) return "";
                var restarted = name != SoakAnalysis.RedisProcess && lastPid.TryGetValue(name, out var pid) && pid != s.Pid;
                lastPid[name] = s.Pid;
                var count = name == SoakAnalysis.RedisProcess ? s.RedisKeys : s.OpenHandles;
                return string.Create(CultureInfo.InvariantCulture, $"{s.RssMiB:F0} / {count}{(restarted ? " new" : "")}");
            });
            text.AppendLine(CultureInfo.InvariantCulture, $"| {round.Key:F1} | {string.Join(" | ", cells)} |");
        }
        text.AppendLine();
    }
}
