using OnlineRl.Messaging;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline.Tests;

// Generators renew their report when the registry's reports expire (Redis keys with a time-to-live): an idle generator
// (no prompts, no new weights; at the end of a run, or while the learner restarts) must stay listed, and a renewal
// that fails (Redis restarting) must not stop it. Found by `onlinerl soak`: after a drain longer than the registry's
// 30 s, both generators had dropped out although they ran.
public class GeneratorStatusTests
{
    private sealed class CountingStatus(bool failRenewals) : IGeneratorStatusReporter
    {
        private int reports;

        public int Reports => Volatile.Read(ref reports);

        public TimeSpan? Heartbeat => TimeSpan.FromMilliseconds(100);

        public ValueTask ReportAsync(string generatorId, long heldVersion, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref reports) > 1 && failRenewals) throw new InvalidOperationException("registry unreachable");
            return ValueTask.CompletedTask;
        }

        public ValueTask<IReadOnlyCollection<long>> HeldVersionsAsync(CancellationToken cancellationToken = default) =>
            ValueTask.FromResult<IReadOnlyCollection<long>>([]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnIdleGeneratorRenewsItsReportAndAFailedRenewalDoesNotStopIt(bool failRenewals)
    {
        var config = TinySetup.Config(TinySetup.Keys()) with { Service = new ServiceSection { Id = "generator-a" } };
        await using var bus = new InProcessEventBus();
        var status = new CountingStatus(failRenewals);
        using var stop = new CancellationTokenSource();
        var generator = Task.Run(() => PipelineServices.RunGeneratorAsync(config, bus, new InMemoryBlobStore(), status, _ => { }, stop.Token));
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (status.Reports < 5 && DateTime.UtcNow < deadline && !generator.IsCompleted) await Task.Delay(50);

        Assert.False(generator.IsCompleted, $"the generator stopped: {generator.Exception?.GetBaseException().Message}");
        Assert.True(status.Reports >= 5, $"{status.Reports} reports in a minute with a heartbeat of 100 ms");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator);
    }
}
