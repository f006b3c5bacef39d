namespace OnlineRl.Pipeline.Tests;

// Ledger verification on doctored ledgers: it must catch what a broken pipeline would leave behind.
public class LedgerTests
{
    private static string Write(Action<LedgerWriter, LedgerWriter, LedgerWriter> body)
    {
        var directory = TinySetup.TempDir("ledger");
        using var stages = new LedgerWriter(directory, "stages");
        using var learner = new LedgerWriter(directory, "learner-a");
        using var restarted = new LedgerWriter(directory, "learner-b");
        body(stages, learner, restarted);
        return directory;
    }

    private static void Produced(LedgerWriter stages, params string[] prompts)
    {
        foreach (var p in prompts)
        {
            stages.Write(LedgerEvent.Published, p);
            stages.Write(LedgerEvent.Generated, p, version: 1);
            stages.Write(LedgerEvent.Scored, p);
        }
    }

    [Fact]
    public void CleanLedgerWithARestartIsOk()
    {
        var directory = Write((stages, learner, restarted) =>
        {
            Produced(stages, "p1", "p2", "p3");
            learner.Write(LedgerEvent.Trained, "p1", step: 1, commit: 1);
            learner.Write(LedgerEvent.Committed, step: 1, commit: 1);
            learner.Write(LedgerEvent.Trained, "p2", step: 2, commit: 2); // lost with the learner
            Thread.Sleep(5);
            restarted.Write(LedgerEvent.Restored, step: 1, commit: 1);
            restarted.Write(LedgerEvent.Trained, "p2", step: 2, commit: 2);
            restarted.Write(LedgerEvent.DroppedStale, "p3", step: 2, commit: 2);
            restarted.Write(LedgerEvent.Committed, step: 2, commit: 2);
        });
        var report = Ledger.Verify(directory);
        Assert.True(report.Ok, report.ToString());
        Assert.Equal((3, 2, 1, 1), (report.Published, report.Trained, report.DroppedStale, report.Uncommitted));
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void DuplicateMissingAndUnscoredSamplesAreReported()
    {
        var directory = Write((stages, learner, restarted) =>
        {
            Produced(stages, "p1", "p2", "p3");
            stages.Write(LedgerEvent.Published, "p4"); // published, never generated or scored
            learner.Write(LedgerEvent.Trained, "p1", step: 1, commit: 1);
            learner.Write(LedgerEvent.Trained, "p4", step: 1, commit: 1);
            learner.Write(LedgerEvent.Committed, step: 1, commit: 1);
            learner.Write(LedgerEvent.Trained, "p1", step: 2, commit: 2); // trained twice
            learner.Write(LedgerEvent.Trained, "p2", step: 2, commit: 2);
            learner.Write(LedgerEvent.Committed, step: 2, commit: 2);
            learner.Write(LedgerEvent.Trained, "p3", step: 3, commit: 3); // never committed: missing
        });
        File.AppendAllText(Path.Combine(directory, "learner-a.jsonl"), "{\"unix_ms\":17,\"serv"); // a line cut by a kill
        var report = Ledger.Verify(directory);
        Assert.False(report.Ok);
        Assert.Equal(new[] { "p1" }, report.TrainedTwice);
        Assert.Equal(new[] { "p3" }, report.Missing);
        Assert.Equal(new[] { "p4" }, report.NeverGeneratedOrScored);
        Assert.Equal(1, report.Uncommitted);
        Assert.Equal(1, report.TornLines);
        Assert.Contains("FAILED", report.ToString(), StringComparison.Ordinal);
        Directory.Delete(directory, recursive: true);
    }
}
