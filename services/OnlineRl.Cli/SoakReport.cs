using System.Globalization;
using System.Text;
using OnlineRl.Messaging;
using OnlineRl.Pipeline;

namespace OnlineRl.Cli;

/// <summary>The verdict and the report of an `onlinerl soak` run: <c>soak-report.md</c> and <c>soak-samples.csv</c>.</summary>
internal static class SoakReport
{
    /// <summary>Keys besides the weight versions: the current-version pointer, the generator registry (a set and one key
    /// per generator reporting), the feeder's position and, on Redis Streams, the topic streams.</summary>
    private const int OtherKeys = 32;

    /// <summary>Writes the report and the samples; returns the verdict (true: every check held).</summary>
    public static bool Write(SoakSettings settings, LedgerReport ledger, IReadOnlyList<(double Minute, string Fault)> faults, IReadOnlyList<SoakSample> samples,
        IReadOnlyList<string> unexpectedExits, bool drained, long newest, IReadOnlyDictionary<string, long> held, int keysPerVersion, Action<string> print)
    {
        var redis = samples.Where(s => s.Process == "redis-server").ToList();
        var capacity = InProcessEventBusOptions.DefaultTopicCapacity;
        var failures = new List<string>();
        if (!ledger.Ok || ledger.Published == 0 || ledger.Published != ledger.Trained + ledger.DroppedStale) failures.Add($"ledger: {ledger}");
        if (!drained) failures.Add("the learner did not train what was fed and stop");
        if (held.Count == 0 || held.Values.Any(v => v != newest))
            failures.Add($"generators not on the newest version v{newest}: {string.Join(", ", held.Select(kv => $"{kv.Key} v{kv.Value}"))}");
        failures.AddRange(unexpectedExits.Select(e => "unexpected exit: " + e));
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
        foreach (var (minute, fault) in faults) text.AppendLine(CultureInfo.InvariantCulture, $"| {minute:F1} | {fault} |");
        text.AppendLine();
        text.AppendLine("## Memory and open handles");
        text.AppendLine();
        text.AppendLine("Per service, its longest-lived process (services killed by a fault start again as new processes); the first sample of a");
        text.AppendLine("process (start-up) is left out of the slope when it has four or more. Slopes are least-squares fits per minute.");
        text.AppendLine();
        text.AppendLine("| process | samples | minutes | RSS first / last / max (MiB) | RSS slope (MiB/min) | handles first / last / max | handles slope (/min) |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var series in samples.Where(s => s.Process != "redis-server").GroupBy(s => ServiceOf(s.Process)).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var longest = series.GroupBy(s => s.Pid).OrderByDescending(g => g.Count()).First().OrderBy(s => s.Minute).ToList();
            text.AppendLine(Row($"{longest[0].Process} (pid {longest[0].Pid})", longest, s => s.RssMiB, s => s.OpenHandles));
        }
        if (redis.Count > 0) text.AppendLine(Row("redis-server (used_memory_rss; keys instead of handles)", redis, s => s.RssMiB, s => s.RedisKeys));
        text.AppendLine();
        text.AppendLine("## Redis");
        text.AppendLine();
        if (redis.Count > 0)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- keys: {redis.Min(s => s.RedisKeys)} to {redis.Max(s => s.RedisKeys)} (bound at each sample: allowed versions x {keysPerVersion} keys per version + {OtherKeys})");
            text.AppendLine(CultureInfo.InvariantCulture, $"- weight versions stored: at most {redis.Max(s => s.WeightVersions)}; allowed at the same samples: {redis.Min(s => s.WeightVersionBound)} to {redis.Max(s => s.WeightVersionBound)} (the newest 2, one being written, and all from the oldest a generator reports holding)");
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

    private static string ServiceOf(string id) => id.Split('-')[0];

    private static string Row(string name, List<SoakSample> series, Func<SoakSample, double> memory, Func<SoakSample, double> handles)
    {
        var fitted = series.Count >= 4 ? series.Skip(1).ToList() : series;
        return string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {series.Count} | {series[^1].Minute - series[0].Minute:F1} | {memory(series[0]):F0} / {memory(series[^1]):F0} / {series.Max(memory):F0} | " +
            $"{Slope(fitted, memory):+0.00;-0.00} | {handles(series[0]):F0} / {handles(series[^1]):F0} / {series.Max(handles):F0} | {Slope(fitted, handles):+0.00;-0.00} |");
    }

    /// <summary>Least-squares slope of <paramref name="value"/> per minute (0 with fewer than two samples).</summary>
    internal static double Slope(IReadOnlyList<SoakSample> series, Func<SoakSample, double> value)
    {
        if (series.Count < 2) return 0;
        var meanX = series.Average(s => s.Minute);
        var meanY = series.Average(value);
        var spread = series.Sum(s => (s.Minute - meanX) * (s.Minute - meanX));
        return spread == 0 ? 0 : series.Sum(s => (s.Minute - meanX) * (value(s) - meanY)) / spread;
    }
}
