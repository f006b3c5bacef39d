using System.Globalization;
using Xunit.Abstractions;

namespace OnlineRl.Distributed.Tests;

// The short version of `onlinerl soak` (the README documents the 20-minute run): the command itself, as a process,
// over Kafka (three mock brokers) with weights in Redis, one fault every 8 s so that each of the eight kinds comes
// at least once. Besides the command's own verdict, the test reads its output files: the ledger (checked here
// again: 0 lost, 0 trained twice, messages redelivered), the samples (every service measured, the survivors often
// enough for their trends to be judged) and the report (each fault named, each judged trend flat).
[Collection(DistributedCollection.Name)]
public sealed class SoakTests(SftCheckpointFixture start, ITestOutputHelper output)
{
    private static readonly string[] FaultsOfEachKind =
    [
        "Kafka broker 1 down", "leader change", "requests answered with errors", "generator-0 killed (kill -9); generator-2 joins",
        "scorer-1 joins", "feeder-0 killed (kill -9) and restarted", "learner killed (kill -9) and restarted", "redis-server killed (kill -9)",
    ];

    [DistributedFact]
    public async Task A_short_soak_under_every_kind_of_fault_loses_nothing_trains_nothing_twice_and_leaks_nothing()
    {
        var root = Path.Combine(Path.GetTempPath(), $"onlinerl-soak-{Guid.NewGuid():N}");
        var soakDir = Path.Combine(root, "soak");
        var passed = false;
        try
        {
            using (var soak = ServiceProcess.Start("soak", start.Cli,
                       ["soak", "--minutes", "1.5", "--fault-every-seconds", "8", "--sample-seconds", "5", "--out", soakDir], Path.Combine(root, "soak.log")))
            {
                var ended = await soak.WaitForExitAsync(TimeSpan.FromMinutes(12));
                output.WriteLine(string.Join('\n', soak.Lines));
                Assert.True(ended, "the soak did not end within 12 minutes");
                Assert.True(soak.ExitCode == 0, $"the soak failed with {soak.ExitCode}:\n{soak.Tail(40)}");
            }

            var report = File.ReadAllText(Path.Combine(soakDir, "soak-report.md"));
            Assert.Contains("verdict: **PASSED**", report, StringComparison.Ordinal);
            foreach (var fault in FaultsOfEachKind) Assert.Contains(fault, report, StringComparison.Ordinal);

            var ledger = Ledger.Verify(Path.Combine(soakDir, "ledger"));
            Assert.True(ledger.Ok, ledger.ToString());
            Assert.True(ledger.Published >= 200, $"only {ledger.Published} prompts in the soak: {ledger}");
            Assert.Equal(ledger.Published, ledger.Trained + ledger.DroppedStale);
            Assert.Empty(ledger.TrainedTwice);
            Assert.Empty(ledger.Missing);
            Assert.True(ledger.Redelivered > 0, "no Kafka message was delivered twice: the faults proved nothing");

            // Every service was measured; the processes no fault killed often enough for their trend to be judged.
            var samples = File.ReadLines(Path.Combine(soakDir, "soak-samples.csv")).Skip(1).Select(line => line.Split(','))
                .Select(f => new SoakSample(double.Parse(f[0], CultureInfo.InvariantCulture), f[1], int.Parse(f[2], CultureInfo.InvariantCulture),
                    double.Parse(f[3], CultureInfo.InvariantCulture), int.Parse(f[4], CultureInfo.InvariantCulture)))
                .ToList();
            var trends = SoakAnalysis.Trends(samples);
            Assert.Equal(["feeder", "generator", "learner", "scorer"], trends.Select(t => t.Service));
            Assert.All(trends.Where(t => t.Service is "generator" or "scorer"), t => Assert.True(t.Judged, $"{t.Service}: {t.Fitted.Count} samples fitted"));
            Assert.All(trends, t => Assert.Empty(SoakAnalysis.Leaks(t)));
            // Read from /proc, not made up: every sample non-zero, every judged process beyond a bare runtime's size.
            Assert.All(samples.Where(s => s.Process != SoakAnalysis.RedisProcess), s => Assert.True(s.RssMiB > 0 && s.OpenHandles > 0, $"implausible sample {s}"));
            Assert.All(trends, t => Assert.True(t.Series.Max(s => s.RssMiB) > 100, $"{t.Service}: at most {t.Series.Max(s => s.RssMiB)} MiB"));
            Assert.Contains(samples, s => s.Process == SoakAnalysis.RedisProcess);
            passed = true;
        }
        finally
        {
            var name = Path.GetFileName(root);
            DistributedRun.KeepFiles(soakDir, name);
            if (DistributedRun.KeepFiles(Path.Combine(soakDir, "logs"), Path.Combine(name, "logs")) is { } kept) output.WriteLine($"report and logs kept in {kept}/..");
            if (!passed) DistributedRun.KeepFiles(Path.Combine(soakDir, "ledger"), Path.Combine(name, "ledger"));
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
