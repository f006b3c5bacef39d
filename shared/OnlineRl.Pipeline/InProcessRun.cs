using System.Diagnostics;
using OnlineRl.Messaging;
using OnlineRl.Model;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Training;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>The outcome of a run.</summary>
/// <param name="InitialAccuracy">Held-out greedy accuracy before RL (after any SFT warm start).</param>
/// <param name="FinalAccuracy">Held-out greedy accuracy at the end.</param>
/// <param name="Steps">Learner reports, one per update.</param>
/// <param name="ElapsedSeconds">Wall time of the RL phase.</param>
/// <param name="DroppedStale">Groups dropped for staleness.</param>
/// <param name="TrainedPrompts">Prompt ids trained on (each once).</param>
/// <param name="OutputDir">Where the report, metrics and checkpoint were written.</param>
public sealed record RunSummary(double InitialAccuracy, double FinalAccuracy, IReadOnlyList<StepReport> Steps, double ElapsedSeconds,
    long DroppedStale, IReadOnlyList<string> TrainedPrompts, string OutputDir);

/// <summary>
/// The all-in-one run: prompt feeder, generator, scorer and learner as concurrent workers in one
/// process, talking only through the in-process event bus, with weights going through the weight store.
/// </summary>
public static class InProcessRun
{
    /// <summary>Runs <paramref name="config"/>; lines go to <paramref name="log"/>.</summary>
    /// <param name="config">The run.</param>
    /// <param name="log">Receives the run's lines; without <paramref name="progress"/>, one per learner step too.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    /// <param name="progress">
    /// Where SFT and RL steps report (step / total, rate, ETA); the steps with a held-out accuracy still come as lines.
    /// </param>
    /// <param name="transports">
    /// Builds the bus, weight store and generator status the configuration names (null: <see cref="InProcessTransports"/>,
    /// inproc and memory only; OnlineRl.Hosting's <c>Transports</c> adds Redis and Kafka).
    /// </param>
    public static async Task<RunSummary> RunAsync(RunConfig config, Action<string> log, CancellationToken cancellationToken = default,
        ConsoleProgress? progress = null, ITransportFactory? transports = null)
    {
        PipelineServices.ConfigureProcess(config);
        Directory.CreateDirectory(config.OutputDir);
        File.WriteAllText(Path.Combine(config.OutputDir, "config.json"), config.ToJson());

        using var session = LearnerSession.Create(config, withGeneratorModel: true, log, progress, cancellationToken);
        var policy = session.Policy;
        var tokenizer = session.Tokenizer;
        var initialAccuracy = session.Evaluate();
        log($"held-out accuracy before RL: {initialAccuracy:P1} ({session.HeldOutCount} problems)");
        using var tensorboard = TensorBoardLog.Open(config);
        tensorboard?.InitialAccuracy(initialAccuracy);

        transports ??= InProcessTransports.Instance;
        await using var bus = transports.CreateBus(config.Transport);
        var store = PipelineServices.WeightStore(config, transports.CreateBlobStore(config.Transport));
        using var learnerLedger = PipelineServices.Ledger(config, "learner");
        using var generatorLedger = PipelineServices.Ledger(config, "generator-0");
        using var scorerLedger = PipelineServices.Ledger(config, "scorer-0");
        using var feederLedger = PipelineServices.Ledger(config, "feeder");
        using var lagTracking = bus is InProcessEventBus inProcessBus ? MessagingMetrics.Shared.TrackConsumerLag(inProcessBus.ConsumerLags) : null;
        var reports = new List<StepReport>();
        var initial = await LearnerWorker.PublishWeightsAsync(store, policy, config.Model.LoraRank > 0, 0, cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        progress?.Begin("RL step", config.Train.Steps, config.Train.TimeLimitMinutes > 0 ? TimeSpan.FromMinutes(config.Train.TimeLimitMinutes) : null);
        var generators = transports.CreateGeneratorStatus(config.Transport, PipelineServices.WeightsPrefix(config));
        var learnerWorker = new LearnerWorker(bus, store, session.Learner, policy, PipelineServices.LearnerWorkerOptions(config, "learner"), config.RunId,
            startVersion: initial.Version, session.Evaluate, report =>
        {
            reports.Add(report);
            tensorboard?.Step(report);
            if (progress is null) log(PipelineServices.ProgressLine(report));
            else progress.Report(report.Step, PipelineServices.StepMetrics(report), keep: report.HeldOutAccuracy is not null);
            if (config.Train.CheckpointEvery > 0 && report.Step % config.Train.CheckpointEvery == 0)
            {
                // Runs on the learner's thread between updates, so the weights are consistent.
                var directory = Path.Combine(config.OutputDir, $"checkpoint-{report.Step}");
                Checkpoint.Save(policy, directory);
                ModelTokenizers.SaveWithModel(tokenizer, config.Model.Checkpoint.Length > 0 ? config.Model.Checkpoint : null, directory);
            }
        }, session.StateStore, learnerLedger, generators);
        var generator = PipelineServices.Generator(config, bus, store, session.GeneratorModel!, tokenizer, "generator-0", initial.Version, generatorLedger, generators);
        var feeder = PipelineServices.Feeder(config, bus, session.Tasks, tokenizer, feederLedger);
        var (groupScorer, rewardModel) = PipelineServices.GroupScorer(config, session.Tasks, tokenizer);
        using var _ = rewardModel;
        var scorer = new ScorerWorker(bus, groupScorer, config.RunId, "scorer-0", scorerLedger);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var background = new[]
        {
            Task.Run(() => feeder.RunAsync(stop.Token), stop.Token),
            Task.Run(() => generator.RunAsync(stop.Token), stop.Token),
            Task.Run(() => scorer.RunAsync(stop.Token), stop.Token),
        };
        try
        {
            var learning = Task.Run(() => learnerWorker.RunAsync(stop.Token), stop.Token);
            var first = await Task.WhenAny(background.Append(learning)).ConfigureAwait(false);
            if (first != learning) await first.ConfigureAwait(false); // a worker failed: surface its exception
            await learning.ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            foreach (var task in background)
            {
                try { await task.ConfigureAwait(false); }
                catch (OperationCanceledException) { }
                catch (ObjectDisposedException) { }
            }
        }
        var elapsed = clock.Elapsed.TotalSeconds;
        progress?.End();
        if (config.Model.LoraRank > 0) LoraAdapters.Merge(policy);
        var finalAccuracy = session.Evaluate();
        tensorboard?.FinalAccuracy(finalAccuracy, reports.Count == 0 ? 0 : reports[^1].Step);
        log($"held-out accuracy after {reports.Count} steps ({elapsed:F0} s): {finalAccuracy:P1} (was {initialAccuracy:P1}); " +
            $"dropped for staleness: {learnerWorker.DroppedStale}; generator on weights v{generator.HeldVersion} of v{learnerWorker.Version}");

        var checkpointDir = Path.Combine(config.OutputDir, "checkpoint");
        Checkpoint.Save(policy, checkpointDir);
        ModelTokenizers.SaveWithModel(tokenizer, config.Model.Checkpoint.Length > 0 ? config.Model.Checkpoint : null, checkpointDir);
        var summary = new RunSummary(initialAccuracy, finalAccuracy, reports, elapsed, learnerWorker.DroppedStale, learnerWorker.TrainedPrompts, config.OutputDir);
        RunReport.Write(summary, config);
        log($"wrote {Path.Combine(config.OutputDir, "report.md")}, report.html, metrics.csv, reward.svg and checkpoint/" +
            (tensorboard is null ? "" : $"; TensorBoard: tensorboard --logdir {config.OutputDir}"));
        return summary;
    }
}
