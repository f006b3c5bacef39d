using System.Globalization;

namespace OnlineRl.Pipeline;

/// <summary>One measurement of one process (or of Redis) during a soak run (`onlinerl soak`).</summary>
/// <param name="Minute">Minutes since the soak started (every sample of one round carries the same value).</param>
/// <param name="Process">Service instance id (e.g. "generator-1"), or <see cref="SoakAnalysis.RedisProcess"/>.</param>
/// <param name="Pid">Operating-system process id (0 for Redis, measured through INFO).</param>
/// <param name="RssMiB">Resident memory in MiB (Redis: used_memory_rss).</param>
/// <param name="OpenHandles">Open file descriptors (sockets, files, pipes).</param>
/// <param name="RedisKeys">Redis only: keys in the database.</param>
/// <param name="WeightVersions">Redis only: weight versions stored (manifests).</param>
/// <param name="WeightVersionBound">Redis only: what the weight store may keep then: the newest few, one being written,
/// and all from the oldest version a generator reported holding in the minute before (the learner prunes after its updates).</param>
/// <param name="LongestStream">Redis Streams bus only: entries in the longest topic stream.</param>
public sealed record SoakSample(double Minute, string Process, int Pid, double RssMiB, int OpenHandles, long RedisKeys = 0, int WeightVersions = 0,
    int WeightVersionBound = 0, long? LongestStream = null);

/// <summary>What happened in one stretch of a soak, from the ledger: the pipeline's throughput and lags over time.</summary>
/// <param name="FromMinute">Start of the stretch (minutes since the soak started).</param>
/// <param name="ToMinute">Its end.</param>
/// <param name="Published">Prompts the feeder published for the first time.</param>
/// <param name="Generated">Groups of completions the generators published (a regenerated prompt counts again).</param>
/// <param name="Trained">Prompts the learner trained for the first time (a step redone after a learner restart does not count again).</param>
/// <param name="DroppedStale">Prompts the learner dropped as stale for the first time.</param>
/// <param name="Backlog">At the end of the stretch: prompts published so far and not yet trained or dropped.</param>
/// <param name="MeanPolicyLag">Prompts trained in the stretch: mean of (the weights version their update published - the
/// version that generated them), i.e. the learner's lag + 1; null when none was trained.</param>
/// <param name="MaxPolicyLag">Their largest policy lag.</param>
/// <param name="Deliveries">Kafka messages handed to readers.</param>
/// <param name="Redeliveries">Of those, messages a reader of the same group had been handed before.</param>
public sealed record SoakStretch(double FromMinute, double ToMinute, int Published, int Generated, int Trained, int DroppedStale, int Backlog,
    double? MeanPolicyLag, long MaxPolicyLag, int Deliveries, int Redeliveries)
{
    /// <summary>Prompts trained per minute in the stretch.</summary>
    public double TrainedPerMinute => ToMinute > FromMinute ? Trained / (ToMinute - FromMinute) : 0;
}

/// <summary>How one service's memory and open handles moved during a soak: the trend of its longest-lived process.</summary>
/// <param name="Service">The service (generator, scorer, feeder, learner).</param>
/// <param name="Series">That process's samples, in time order.</param>
/// <param name="Fitted">The samples the trend is fitted on: those after start-up (see <see cref="SoakAnalysis.Trends"/>).</param>
public sealed record SoakTrend(string Service, IReadOnlyList<SoakSample> Series, IReadOnlyList<SoakSample> Fitted)
{
    /// <summary>Least-squares slope of the resident memory, MiB per minute.</summary>
    public double RssSlope => SoakAnalysis.Slope(Fitted, s => s.RssMiB);

    /// <summary>Least-squares slope of the open file descriptors, per minute.</summary>
    public double HandleSlope => SoakAnalysis.Slope(Fitted, s => s.OpenHandles);

    /// <summary>Minutes the fit spans.</summary>
    public double FittedMinutes => Fitted.Count < 2 ? 0 : Fitted[^1].Minute - Fitted[0].Minute;

    /// <summary>Whether the trend has enough samples to be judged (<see cref="SoakAnalysis.MinFittedSamples"/>).</summary>
    public bool Judged => Fitted.Count >= SoakAnalysis.MinFittedSamples;
}

/// <summary>
/// The judgement of a soak run's samples and ledger: per-service memory and handle trends (is anything leaking?), and
/// the ledger as a timeline of throughput, backlog and lag.
/// </summary>
public static class SoakAnalysis
{
    /// <summary>The process name Redis's samples carry.</summary>
    public const string RedisProcess = "redis-server";

    /// <summary>Fewest samples after start-up a trend needs; with fewer the service's trend is reported but not judged.</summary>
    public const int MinFittedSamples = 5;

    /// <summary>
    /// Memory growth a trend may show over its fitted span: this many MiB per minute (a leak of a few MiB per minute is
    /// gigabytes per day), but never less than <see cref="RssNoiseMiB"/> in all.
    /// </summary>
    public const double RssLimitPerMinute = 4;

    /// <summary>Memory that comes and goes without a leak (garbage collections, librdkafka's buffers, libtorch's caching
    /// allocator): a short fit may rise this much in all.</summary>
    public const double RssNoiseMiB = 48;

    /// <summary>Open descriptors a trend may add per minute of its fitted span (a socket or file leaked per fault or per
    /// reconnection adds one per fault), but never less than <see cref="HandleNoise"/> in all.</summary>
    public const double HandleLimitPerMinute = 1;

    /// <summary>Descriptors that come and go without a leak (broker connections while a broker is down, Redis reconnections).</summary>
    public const double HandleNoise = 12;

    /// <summary>The service of a process name ("generator-3" is a generator).</summary>
    public static string ServiceOf(string id) => id.Split('-')[0];

    /// <summary>The least a process's start-up is given before its trend counts: the learner's memory grows over its first
    /// updates for about a minute, longer on a busy machine.</summary>
    public const double WarmUpMinutes = 1;

    /// <summary>
    /// Per service, the trend of its longest-lived process (a service killed by a fault starts again as a new process).
    /// The fit leaves out the process's start-up: its first <see cref="WarmUpMinutes"/>, or the first third of its
    /// sampled time when that is longer (the runtime, libtorch's allocator and the clients warm up).
    /// </summary>
    public static List<SoakTrend> Trends(IReadOnlyList<SoakSample> samples) =>
        samples.Where(s => s.Process != RedisProcess).GroupBy(s => ServiceOf(s.Process)).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(service =>
            {
                var series = service.GroupBy(s => s.Pid).OrderByDescending(g => g.Count()).First().OrderBy(s => s.Minute).ToList();
                var warmUp = Math.Max(WarmUpMinutes, (series[^1].Minute - series[0].Minute) / 3);
                return new SoakTrend(service.Key, series, series.Where(s => s.Minute >= series[0].Minute + warmUp).ToList());
            })
            .ToList();

    /// <summary>What a trend shows that looks like a leak: nothing when it is flat, or too short to judge.</summary>
    public static IEnumerable<string> Leaks(SoakTrend trend)
    {
        if (!trend.Judged) yield break;
        var minutes = trend.FittedMinutes;
        var rssGrowth = trend.RssSlope * minutes;
        var rssAllowed = Math.Max(RssNoiseMiB, RssLimitPerMinute * minutes);
        if (rssGrowth > rssAllowed)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{trend.Service} (pid {trend.Series[0].Pid}): memory grew {rssGrowth:F0} MiB over {minutes:F1} min ({trend.RssSlope:+0.00} MiB/min), more than the {rssAllowed:F0} MiB allowed");
        var handleGrowth = trend.HandleSlope * minutes;
        var handlesAllowed = Math.Max(HandleNoise, HandleLimitPerMinute * minutes);
        if (handleGrowth > handlesAllowed)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{trend.Service} (pid {trend.Series[0].Pid}): open handles grew by {handleGrowth:F0} over {minutes:F1} min ({trend.HandleSlope:+0.00}/min), more than the {handlesAllowed:F0} allowed");
    }

    /// <summary>
    /// The ledger cut into stretches of <paramref name="width"/> from <paramref name="started"/> until its last entry:
    /// what was published, generated, trained and dropped in each, the backlog at its end, the policy lag of what was
    /// trained, Kafka deliveries and redeliveries.
    /// </summary>
    /// <param name="entries">The run's ledger (<see cref="Ledger.Entries"/>).</param>
    /// <param name="started">When the soak started (UTC).</param>
    /// <param name="width">The length of a stretch.</param>
    public static List<SoakStretch> Timeline(IReadOnlyList<LedgerEntry> entries, DateTime started, TimeSpan width)
    {
        var startMs = new DateTimeOffset(started.ToUniversalTime(), TimeSpan.Zero).ToUnixTimeMilliseconds();
        var widthMs = Math.Max(1, (long)width.TotalMilliseconds);
        var ordered = entries.OrderBy(e => e.UnixMs).ToList();
        var stretches = new List<SoakStretch>();
        var published = new HashSet<string>();
        var consumed = new HashSet<string>();
        var generatedVersions = new Dictionary<string, List<long>>();
        var delivered = new HashSet<(string?, string?, string?)>();
        var index = 0;
        for (var from = startMs; index < ordered.Count; from += widthMs)
        {
            int newlyPublished = 0, generated = 0, trained = 0, dropped = 0, deliveries = 0, redeliveries = 0;
            var lags = new List<long>();
            for (; index < ordered.Count && ordered[index].UnixMs < from + widthMs; index++)
            {
                var entry = ordered[index];
                switch (entry.Event)
                {
                    case LedgerEvent.Published when published.Add(entry.PromptId):
                        newlyPublished++;
                        break;
                    case LedgerEvent.Generated:
                        generated++;
                        if (!generatedVersions.TryGetValue(entry.PromptId, out var versions)) generatedVersions[entry.PromptId] = versions = [];
                        versions.Add(entry.Version);
                        break;
                    case LedgerEvent.Trained when consumed.Add(entry.PromptId):
                        trained++;
                        // The generation it trained on: the newest one made with weights no newer than the learner's.
                        if (generatedVersions.TryGetValue(entry.PromptId, out var made) && made.Where(v => v <= entry.Version).DefaultIfEmpty(-1).Max() is >= 0 and var version)
                            lags.Add(entry.Version - version);
                        break;
                    case LedgerEvent.DroppedStale when consumed.Add(entry.PromptId):
                        dropped++;
                        break;
                    case LedgerEvent.Delivered:
                        deliveries++;
                        if (!delivered.Add((entry.Group, entry.Topic, entry.Message))) redeliveries++;
                        break;
                }
            }
            stretches.Add(new SoakStretch((from - startMs) / 60_000.0, (from + widthMs - startMs) / 60_000.0, newlyPublished, generated, trained, dropped,
                published.Count(p => !consumed.Contains(p)), lags.Count == 0 ? null : lags.Average(), lags.DefaultIfEmpty(0).Max(), deliveries, redeliveries));
        }
        return stretches;
    }

    /// <summary>Least-squares slope of <paramref name="value"/> per minute (0 with fewer than two samples).</summary>
    public static double Slope(IReadOnlyList<SoakSample> series, Func<SoakSample, double> value)
    {
        if (series.Count < 2) return 0;
        var meanX = series.Average(s => s.Minute);
        var meanY = series.Average(value);
        var spread = series.Sum(s => (s.Minute - meanX) * (s.Minute - meanX));
        return spread == 0 ? 0 : series.Sum(s => (s.Minute - meanX) * (value(s) - meanY)) / spread;
    }
}
