namespace OnlineRl.Pipeline.Tests;

// The soak's judgement on made-up samples and ledgers: a leak must be called a leak, noise and start-up must not, and
// the timeline must count what the ledger shows (a step redone after a restart once, a redelivery as one).
public class SoakAnalysisTests
{
    /// <summary>A sample a minute for <paramref name="minutes"/> minutes: memory and handles from the given functions of the minute.</summary>
    private static List<SoakSample> Series(string process, int pid, int minutes, Func<int, double> rss, Func<int, int> handles, int from = 0) =>
        Enumerable.Range(from, minutes).Select(m => new SoakSample(m, process, pid, rss(m), handles(m))).ToList();

    // A deterministic wobble of +-20 MiB and +-5 handles (garbage collections, connections coming and going).
    private static double Wobble(int minute) => minute % 3 == 0 ? 20 : minute % 3 == 1 ? -20 : 0;

    [Fact]
    public void SlopeIsTheLeastSquaresFit()
    {
        var line = Series("scorer-0", 1, 6, m => 3 * m + 5, _ => 10);
        Assert.Equal(3, SoakAnalysis.Slope(line, s => s.RssMiB), 10);
        // y = 0, 2, 1, 3 at x = 0..3: slope = sum((x - 1.5)(y - 1.5)) / sum((x - 1.5)^2) = 4 / 5 = 0.8.
        var points = new[] { 0.0, 2, 1, 3 }.Select((y, x) => new SoakSample(x, "p", 1, y, 0)).ToList();
        Assert.Equal(0.8, SoakAnalysis.Slope(points, s => s.RssMiB), 10);
        Assert.Equal(0, SoakAnalysis.Slope(points.Take(1).ToList(), s => s.RssMiB));
    }

    [Fact]
    public void FlatNoisyServicesAfterAStartUpJumpAreNotLeaks()
    {
        // Memory doubles in the first minutes (runtime and libtorch warming up), then only wobbles for 20 minutes.
        var samples = Series("generator-1", 7, 20, m => m < 3 ? 200 + 60 * m : 380 + Wobble(m), m => 250 + m % 5);
        var trend = Assert.Single(SoakAnalysis.Trends(samples));
        Assert.True(trend.Judged);
        Assert.Empty(SoakAnalysis.Leaks(trend));
    }

    [Fact]
    public void MemoryGrowingFiveMiBAMinuteIsALeak()
    {
        var samples = Series("learner", 9, 20, m => 400 + 5 * m + Wobble(m), _ => 260);
        var leak = Assert.Single(SoakAnalysis.Leaks(Assert.Single(SoakAnalysis.Trends(samples))));
        Assert.Contains("learner (pid 9): memory grew", leak, StringComparison.Ordinal);
    }

    [Fact]
    public void OneHandleLeakedEveryFortySecondsIsALeak()
    {
        // A socket lost per fault, one fault every 40 s: 1.5 handles a minute, 30 in 20 minutes.
        var samples = Series("scorer-0", 3, 20, _ => 230, m => 250 + m * 3 / 2);
        var leak = Assert.Single(SoakAnalysis.Leaks(Assert.Single(SoakAnalysis.Trends(samples))));
        Assert.Contains("scorer (pid 3): open handles grew", leak, StringComparison.Ordinal);
    }

    [Fact]
    public void EachServiceIsJudgedOnItsLongestLivedProcessAndShortOnesAreNotJudged()
    {
        // The first feeder lived 10 minutes and leaked; its restarted successor ran 3 minutes (too short to judge).
        var samples = Series("feeder-0", 11, 10, m => 200 + 10 * m, _ => 250)
            .Concat(Series("feeder-0", 12, 3, _ => 200, _ => 250, from: 10))
            .Concat(Series("scorer-0", 13, 3, m => 200 + 100 * m, _ => 250))
            .Concat([new SoakSample(0, SoakAnalysis.RedisProcess, 0, 20, 0, RedisKeys: 60)])
            .ToList();
        var trends = SoakAnalysis.Trends(samples);
        Assert.Equal(["feeder", "scorer"], trends.Select(t => t.Service));
        Assert.All(trends[0].Series, s => Assert.Equal(11, s.Pid));
        Assert.Single(SoakAnalysis.Leaks(trends[0]));
        Assert.False(trends[1].Judged);
        Assert.Empty(SoakAnalysis.Leaks(trends[1]));
    }

    [Fact]
    public void TimelineCountsWhatTheLedgerShowsPerStretch()
    {
        var started = new DateTime(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc);
        var t0 = new DateTimeOffset(started).ToUnixTimeMilliseconds();
        LedgerEntry At(double seconds, LedgerEvent what, string prompt = "", long version = 0, string? message = null) =>
            new(t0 + (long)(seconds * 1000), "svc", what, prompt, Version: version, Group: message is null ? null : "generators",
                Topic: message is null ? null : "prompts", Message: message);
        var entries = new List<LedgerEntry>
        {
            // First minute: two prompts published and delivered, both generated with v1, p1 trained at v3 (lag 2).
            At(1, LedgerEvent.Published, "p1"), At(2, LedgerEvent.Published, "p2"),
            At(3, LedgerEvent.Delivered, "p1", message: "0:0"), At(4, LedgerEvent.Delivered, "p2", message: "1:0"),
            At(10, LedgerEvent.Generated, "p1", 1), At(11, LedgerEvent.Generated, "p2", 1),
            At(30, LedgerEvent.Trained, "p1", 3),
            // Second minute: p2 redelivered and generated again with v2; the learner died and redid p1 (not counted
            // again); p2 trained at v4 on its v2 generation (lag 2); a republished p1 is no new prompt; p3 published.
            At(61, LedgerEvent.Delivered, "p2", message: "1:0"), At(62, LedgerEvent.Generated, "p2", 2),
            At(70, LedgerEvent.Trained, "p1", 3), At(80, LedgerEvent.Trained, "p2", 4),
            At(85, LedgerEvent.Published, "p1"), At(90, LedgerEvent.Published, "p3"),
            // Third minute: p3 dropped as stale.
            At(150, LedgerEvent.DroppedStale, "p3", 6),
        };
        var timeline = SoakAnalysis.Timeline(entries, started, TimeSpan.FromMinutes(1));

        Assert.Equal(3, timeline.Count);
        Assert.Equal(new SoakStretch(0, 1, Published: 2, Generated: 2, Trained: 1, DroppedStale: 0, Backlog: 1, MeanPolicyLag: 2, MaxPolicyLag: 2,
            Deliveries: 2, Redeliveries: 0), timeline[0]);
        Assert.Equal(new SoakStretch(1, 2, Published: 1, Generated: 1, Trained: 1, DroppedStale: 0, Backlog: 1, MeanPolicyLag: 2, MaxPolicyLag: 2,
            Deliveries: 1, Redeliveries: 1), timeline[1]);
        Assert.Equal(new SoakStretch(2, 3, Published: 0, Generated: 0, Trained: 0, DroppedStale: 1, Backlog: 0, MeanPolicyLag: null, MaxPolicyLag: 0,
            Deliveries: 0, Redeliveries: 0), timeline[2]);
        Assert.Equal(1, timeline[0].TrainedPerMinute);
    }
}
