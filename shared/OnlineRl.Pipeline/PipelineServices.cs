using OnlineRl.Algorithms;
using OnlineRl.Messaging;
using OnlineRl.Rewards;
using OnlineRl.Model;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Training;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>
/// The four services of a run, each built from a configuration and the transports it is given. The
/// all-in-one run and the service commands (`onlinerl feeder|generator|scorer|learner`) both build their
/// workers here, so they behave the same.
/// </summary>
public static class PipelineServices
{
    /// <summary>Process-wide settings: thread pool, libtorch threads and seed.</summary>
    public static void ConfigureProcess(RunConfig config)
    {
        // Generator and learner do long synchronous tensor work on pool threads; keep threads for the bus.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 16), io);
        // Those threads would otherwise each get a malloc arena of libtorch's freed memory (see MallocArenas); the
        // tools have set the limit first thing already, other hosts (tests) get it here.
        MallocArenas.LimitOnce();
        torch.set_num_threads(config.Threads > 0 ? config.Threads : Environment.ProcessorCount);
        torch.manual_seed(config.Seed);
    }

    /// <summary>The run's weight store over <paramref name="blobs"/>.</summary>
    public static WeightStore WeightStore(RunConfig config, IBlobStore blobs) =>
        new(blobs, new WeightStoreOptions { Prefix = WeightsPrefix(config) });

    /// <summary>The key prefix of the run's weights (and of the generators' held-version registry).</summary>
    public static string WeightsPrefix(RunConfig config) => $"onlinerl:{config.RunId}:weights";

    /// <summary>The ledger of service instance <paramref name="serviceId"/> (null without <c>train.ledger_dir</c>).</summary>
    public static LedgerWriter? Ledger(RunConfig config, string serviceId) =>
        config.Train.LedgerDir.Length == 0 ? null : new LedgerWriter(config.Train.LedgerDir, serviceId);

    /// <summary>
    /// Where a service counts its Kafka deliveries so that the counts hold across restarts: the run's ledger (null
    /// without <c>train.ledger_dir</c> or on another bus; the bus then counts per process).
    /// </summary>
    public static LedgerDeliveryJournal? DeliveryJournal(RunConfig config, string serviceId) =>
        config.Train.LedgerDir.Length == 0 || !config.Transport.Bus.StartsWith("kafka://", StringComparison.Ordinal)
            ? null
            : new LedgerDeliveryJournal(config.Train.LedgerDir, serviceId);

    /// <summary>The allowed policy lag (0 when generation and learning strictly alternate).</summary>
    public static int MaxPolicyLag(RunConfig config) => config.Train.Overlap ? config.Train.MaxPolicyLag : 0;

    /// <summary>The key of the run's feeder position in the weights' blob store (see <see cref="FeederCursor"/>).</summary>
    public static string FeederPositionKey(RunConfig config) => $"onlinerl:{config.RunId}:feeder:position";

    /// <summary>The feeder; with <paramref name="positions"/> it continues from the run's saved position.</summary>
    public static FeederWorker Feeder(RunConfig config, IEventBus bus, TaskSource tasks, ITokenizer tokenizer, LedgerWriter? ledger,
        IBlobStore? positions = null)
    {
        var inFlight = (long)(1 + MaxPolicyLag(config)) * config.Algorithm.PromptsPerStep;
        var cursor = positions is null ? null : new FeederCursor(positions, FeederPositionKey(config));
        return new FeederWorker(bus, tasks, tokenizer, config.RunId, inFlight, config.Task.MaxPrompts, ledger, cursor);
    }

    /// <summary>A generator sampling with <paramref name="model"/>, which holds <paramref name="heldVersion"/> (0: none yet).</summary>
    public static GeneratorWorker Generator(RunConfig config, IEventBus bus, WeightStore store, TransformerModel model, ITokenizer tokenizer,
        string generatorId, long heldVersion, LedgerWriter? ledger, IGeneratorStatusReporter? status) =>
        new(bus, store, model, tokenizer, config.Sampling, config.RunId, generatorId, heldVersion,
            batchPrompts: Math.Min(config.Algorithm.PromptsPerStep, 32), seed: config.Seed, ledger: ledger, status: status);

    /// <summary>The scorer's reward: rules, or a reward model (returned for disposal) plus optional rules.</summary>
    public static (IGroupScorer Scorer, TransformerModel? RewardModel) GroupScorer(RunConfig config, TaskSource tasks, ITokenizer tokenizer)
    {
        if (config.Reward.Model.Length == 0) return (new RuleScorer(tasks.Reward), null);
        var rewardModel = Checkpoint.Load(config.Reward.Model, ScalarType.Float32, Devices.Parse(config.Device));
        if (rewardModel.score is null || rewardModel.Config.VocabSize < tokenizer.VocabSize)
        {
            rewardModel.Dispose();
            throw new ConfigException($"reward.model {config.Reward.Model}: needs a reward head (train it with `onlinerl train-rm`) and the policy's vocabulary");
        }
        var scorer = new RewardModelScorer(rewardModel, Path.GetFileName(Path.GetFullPath(config.Reward.Model)),
            config.Reward.KeepRules ? new RuleScorer(tasks.Reward) : null, config.Reward.ModelWeight);
        return (scorer, rewardModel);
    }

    /// <summary>The learner worker's settings.</summary>
    public static LearnerWorkerOptions LearnerWorkerOptions(RunConfig config, string serviceId) => new()
    {
        PromptsPerStep = config.Algorithm.PromptsPerStep, MaxPolicyLag = MaxPolicyLag(config), Steps = config.Train.Steps,
        TimeLimit = config.Train.TimeLimitMinutes > 0 ? TimeSpan.FromMinutes(config.Train.TimeLimitMinutes) : null,
        PublishAdaptersOnly = config.Model.LoraRank > 0, EvalEvery = config.Train.EvalEvery,
        CheckpointEvery = config.Train.CheckpointEvery > 0 ? config.Train.CheckpointEvery : 1, ServiceId = serviceId,
        MaxPrompts = config.Task.MaxPrompts,
    };

    /// <summary>The learner settings named by a run configuration.</summary>
    public static LearnerOptions LearnerOptions(RunConfig config)
    {
        var a = config.Algorithm;
        return new LearnerOptions
        {
            Algorithm = a.Name,
            LearningRate = a.LearningRate, WarmupSteps = a.WarmupSteps, TotalSteps = Math.Max(config.Train.Steps, 1000),
            MaxGradNorm = a.MaxGradNorm, Epochs = a.Epochs, Minibatches = a.Minibatches, Temperature = config.Sampling.Temperature,
            Grpo = new GrpoOptions
            {
                ClipLow = a.ClipLow, ClipHigh = a.ClipHigh, Beta = a.KlBeta, MaxImportanceWeight = a.MaxImportanceWeight,
                KlEstimator = a.KlEstimator, Aggregation = a.LossAggregation, MaxCompletionLength = config.Sampling.MaxNewTokens,
                StdNormalize = a.StdNormalize, FilterEqualGroups = a.FilterEqualGroups,
            },
            // PPO has one clip range: algorithm.clip_low (clip_high is DAPO's clip-higher, a GRPO setting).
            Ppo = new PpoOptions
            {
                ClipRange = a.ClipLow, MaxImportanceWeight = a.MaxImportanceWeight, KlBeta = a.KlBeta,
                Gamma = a.Gamma, Lambda = a.Lambda, ValueClip = a.ValueClip, ValueCoefficient = a.ValueCoefficient,
            },
            Dpo = new DpoOptions
            {
                Beta = a.DpoBeta, LabelSmoothing = a.DpoLabelSmoothing, ReferenceFree = a.DpoReferenceFree, SftWeight = a.DpoSftWeight,
                LossType = a.DpoLoss,
            },
            ShuffleRewards = config.Train.ShuffleRewards, Seed = config.Seed,
        };
    }

    /// <summary>The one-line progress report of a learner step.</summary>
    public static string ProgressLine(StepReport r) => $"step {r.Step,4}  {StepMetrics(r)}";

    /// <summary>A learner step's numbers: reward, loss, KL, tokens/s, lag, weights version, time, held-out accuracy.</summary>
    public static string StepMetrics(StepReport r)
    {
        double M(string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
        var accuracy = r.HeldOutAccuracy is { } a ? $"  held-out {a:P1}" : "";
        return $"reward {M("reward_mean"),6:F3}  loss {M("loss"),8:F4}  kl {M("kl"),7:F4}  " +
               $"tok/s {M("tokens_per_second"),6:F0}  lag {r.PolicyLagMean:F2}  v{r.PolicyVersion}  {r.ElapsedSeconds,5:F0}s{accuracy}";
    }

    /// <summary>Separate service processes need a shared bus and weight store: inproc and memory are refused, naming the key.</summary>
    public static void RequireSharedTransports(RunConfig config)
    {
        if (!TransportUris.IsShared(config.Transport.Bus))
            throw new ConfigException("config key 'transport.bus': 'inproc' connects only the services of one process; a service process needs redis://HOST:PORT or kafka://HOST:PORT (or use `onlinerl run`)");
        if (!TransportUris.IsShared(config.Transport.Weights))
            throw new ConfigException("config key 'transport.weights': 'memory' is private to one process; a service process needs redis://HOST:PORT (or use `onlinerl run`)");
    }

    /// <summary>
    /// The feeder service: publishes prompts until cancelled, keeping its position in <paramref name="blobs"/> (the
    /// weight store), so that a restarted feeder continues the run's prompt numbering.
    /// </summary>
    public static async Task RunFeederAsync(RunConfig config, IEventBus bus, IBlobStore blobs, Action<string> log, CancellationToken cancellationToken)
    {
        var tokenizer = PolicySetup.Tokenizer(config);
        var tasks = TaskSource.Create(config.Task, config.Seed, log);
        using var ledger = Ledger(config, config.Service.Id);
        log($"feeder {config.Service.Id}: task {config.Task.Kind}, {(config.Task.MaxPrompts > 0 ? config.Task.MaxPrompts.ToString(System.Globalization.CultureInfo.InvariantCulture) : "endless")} prompts");
        if (await new FeederCursor(blobs, FeederPositionKey(config)).LoadAsync(cancellationToken).ConfigureAwait(false) is { } saved)
            log($"resuming at prompt {saved.Published} (retired {saved.Retired}, weights v{saved.NewestVersion})");
        await Feeder(config, bus, tasks, tokenizer, ledger, blobs).RunAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The generator service: a model of the configured architecture that takes its weights from the store
    /// (the first announced version) and samples until cancelled.
    /// </summary>
    public static async Task RunGeneratorAsync(RunConfig config, IEventBus bus, IBlobStore blobs, IGeneratorStatusReporter? status,
        Action<string> log, CancellationToken cancellationToken)
    {
        if (config.Model.LoraRank > 0 && config.Model.Checkpoint.Length == 0)
            throw new ConfigException("config key 'model.lora_rank': a generator service with LoRA needs model.checkpoint (only adapters travel, so the base must be the same checkpoint everywhere)");
        var tokenizer = PolicySetup.Tokenizer(config);
        using var model = PolicySetup.Create(config, tokenizer, ModelHeads.None, Devices.Parse(config.Device));
        if (config.Model.LoraRank > 0) LoraAdapters.Attach(model, LoraConfig.Default with { Rank = config.Model.LoraRank, Alpha = config.Model.LoraAlpha });
        using var ledger = Ledger(config, config.Service.Id);
        log($"generator {config.Service.Id}: waiting for weights from the learner");
        var generator = Generator(config, bus, WeightStore(config, blobs), model, tokenizer, config.Service.Id, heldVersion: 0, ledger, status);
        await generator.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The scorer service: scores rollout groups until cancelled.</summary>
    public static async Task RunScorerAsync(RunConfig config, IEventBus bus, Action<string> log, CancellationToken cancellationToken)
    {
        var tokenizer = PolicySetup.Tokenizer(config);
        var tasks = TaskSource.Create(config.Task, config.Seed, log);
        var (scorer, rewardModel) = GroupScorer(config, tasks, tokenizer);
        using var _ = rewardModel;
        using var ledger = Ledger(config, config.Service.Id);
        log($"scorer {config.Service.Id}: {scorer.Version}");
        await new ScorerWorker(bus, scorer, config.RunId, config.Service.Id, ledger).RunAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The learner service: resumes from <c>train.state_dir</c> when it holds a checkpoint, publishes the weights,
    /// trains until the configured steps or time are used up, and returns the worker (its counters).
    /// </summary>
    /// <param name="config">The run.</param>
    /// <param name="bus">The event bus.</param>
    /// <param name="blobs">The weights' blob store.</param>
    /// <param name="generators">Where generators report the versions they hold (which the learner may not prune).</param>
    /// <param name="log">Receives the learner's lines.</param>
    /// <param name="cancellationToken">Stops the learner.</param>
    public static async Task<LearnerWorker> RunLearnerAsync(RunConfig config, IEventBus bus, IBlobStore blobs, IGeneratorStatusReporter generators,
        Action<string> log, CancellationToken cancellationToken)
    {
        using var session = LearnerSession.Create(config, withGeneratorModel: false, log, cancellationToken: cancellationToken);
        using var ledger = Ledger(config, config.Service.Id);
        var store = WeightStore(config, blobs);
        var resuming = session.StateStore?.Latest() is not null;
        if (resuming) log($"resuming from {session.StateStore!.Latest()}");
        using var tensorboard = TensorBoardLog.Open(config, resuming);
        if (!resuming && session.HeldOutCount > 0)
        {
            var accuracy = session.Evaluate();
            log($"held-out accuracy before RL: {accuracy:P1} ({session.HeldOutCount} problems)");
            tensorboard?.InitialAccuracy(accuracy);
        }
        var initial = !resuming
            ? (await LearnerWorker.PublishWeightsAsync(store, session.Policy, config.Model.LoraRank > 0, 0, cancellationToken).ConfigureAwait(false)).Version
            : 0; // a resuming learner publishes its restored weights itself
        var worker = new LearnerWorker(bus, store, session.Learner, session.Policy, LearnerWorkerOptions(config, config.Service.Id), config.RunId, initial,
            session.HeldOutCount > 0 ? session.Evaluate : null, report =>
            {
                log(ProgressLine(report));
                tensorboard?.Step(report);
            }, session.StateStore, ledger, generators);
        await worker.RunAsync(cancellationToken).ConfigureAwait(false);
        if (worker.ShortLastBatch is { } last)
            log($"all {config.Task.MaxPrompts} prompts of the feed are consumed ({worker.DroppedStale} dropped as stale): the last update used {last}");
        if (session.HeldOutCount > 0)
        {
            var accuracy = session.Evaluate();
            log($"held-out accuracy after RL: {accuracy:P1}");
            tensorboard?.FinalAccuracy(accuracy, session.Learner.StepCount);
        }
        log($"learner {config.Service.Id}: {session.Learner.StepCount} steps, weights v{worker.Version}, dropped stale {worker.DroppedStale}, duplicates {worker.Duplicates}" +
            (worker.RestoredStep is { } step ? $", resumed from step {step}" : ""));
        return worker;
    }
}
