using OnlineRl.Messaging;
using OnlineRl.Model;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Training;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>
/// The learner's side of a run: tokenizer, tasks, the policy (warm-started by SFT when new), the frozen
/// reference, LoRA adapters, the learner and its crash-safe state store. Shared by the all-in-one run and
/// the learner service. With a state directory the reference is saved there once and reloaded after a
/// restart, and the SFT warm start is skipped when a checkpoint exists (it would be overwritten anyway).
/// </summary>
public sealed class LearnerSession : IDisposable
{
    private readonly List<string> heldOutText;
    private readonly List<int[]> heldOutPrompts;
    private readonly int[] stops;

    private LearnerSession(RunConfig config, ITokenizer tokenizer, TaskSource tasks, TransformerModel policy, TransformerModel reference,
        TransformerModel? generatorModel, Learner learner, LearnerStateStore? stateStore)
    {
        Config = config;
        Tokenizer = tokenizer;
        Tasks = tasks;
        Policy = policy;
        Reference = reference;
        GeneratorModel = generatorModel;
        Learner = learner;
        StateStore = stateStore;
        stops = tokenizer.EosId is { } eos ? new[] { eos } : Array.Empty<int>();
        heldOutPrompts = tasks.HeldOut.Select(t => tokenizer.Encode(t.Prompt)).ToList();
        heldOutText = tasks.HeldOut.Select(t => t.Answer).ToList();
    }

    /// <summary>The configuration.</summary>
    public RunConfig Config { get; }
    /// <summary>The policy's tokenizer.</summary>
    public ITokenizer Tokenizer { get; }
    /// <summary>Training prompts and the held-out set.</summary>
    public TaskSource Tasks { get; }
    /// <summary>The trained policy.</summary>
    public TransformerModel Policy { get; }
    /// <summary>The frozen initial policy (KL terms, DPO).</summary>
    public TransformerModel Reference { get; }
    /// <summary>A sampling copy of the initial policy for an in-process generator (when asked for).</summary>
    public TransformerModel? GeneratorModel { get; }
    /// <summary>The learner.</summary>
    public Learner Learner { get; }
    /// <summary>Crash-safe checkpoints (null without <c>train.state_dir</c>).</summary>
    public LearnerStateStore? StateStore { get; }
    /// <summary>Number of held-out problems.</summary>
    public int HeldOutCount => heldOutPrompts.Count;

    /// <summary>Builds the session; <paramref name="withGeneratorModel"/> also makes <see cref="GeneratorModel"/>.</summary>
    /// <param name="config">The run.</param>
    /// <param name="withGeneratorModel">Also make a sampling copy of the policy.</param>
    /// <param name="log">Receives the lines (policy size, SFT progress without <paramref name="progress"/>).</param>
    /// <param name="progress">Where the SFT warm start reports its steps (step / total, rate, ETA, loss), if given.</param>
    /// <param name="cancellationToken">Stops the SFT warm start between two steps (Ctrl-C, SIGTERM).</param>
    public static LearnerSession Create(RunConfig config, bool withGeneratorModel, Action<string> log, ConsoleProgress? progress = null,
        CancellationToken cancellationToken = default)
    {
        var device = Devices.Parse(config.Device);
        var tokenizer = PolicySetup.Tokenizer(config);
        var tasks = TaskSource.Create(config.Task, config.Seed, log);
        var heads = config.Algorithm.Name == "ppo" ? ModelHeads.Value : ModelHeads.None;
        var stateStore = config.Train.StateDir.Length > 0 ? new LearnerStateStore(config.Train.StateDir) : null;
        var policy = PolicySetup.Create(config, tokenizer, heads, device);
        log($"policy: {policy.Config.ModelType}, {policy.ParameterCount:N0} parameters, {config.Model.Layers} layers; task {config.Task.Kind}; algorithm {config.Algorithm.Name}");
        var resuming = stateStore?.Latest() is not null;
        if (config.Model.Checkpoint.Length == 0 && config.Sft.Steps > 0 && !resuming) WarmStart(policy, tokenizer, tasks, config, log, progress, cancellationToken);

        var reference = PolicySetup.Copy(policy, ModelHeads.None);
        foreach (var p in reference.parameters()) p.requires_grad = false;
        stateStore?.SaveOrLoadReference(reference);
        var generatorModel = withGeneratorModel ? PolicySetup.Copy(policy, ModelHeads.None) : null;
        if (config.Model.LoraRank > 0)
        {
            var lora = LoraConfig.Default with { Rank = config.Model.LoraRank, Alpha = config.Model.LoraAlpha };
            LoraAdapters.Attach(policy, lora);
            if (policy.value_head is not null) foreach (var p in policy.value_head.parameters()) p.requires_grad = true;
            if (generatorModel is not null)
            {
                LoraAdapters.Attach(generatorModel, lora);
                generatorModel.load_state_dict(LoraAdapters.AdapterTensors(policy).ToDictionary(kv => kv.Key["base_model.model.".Length..], kv => kv.Value), strict: false);
            }
        }
        var learner = new Learner(policy, reference, InProcessRun.LearnerOptionsFrom(config));
        return new LearnerSession(config, tokenizer, tasks, policy, reference, generatorModel, learner, stateStore);
    }

    /// <summary>Greedy held-out accuracy of the policy (NaN without a held-out set).</summary>
    public double Evaluate() => heldOutPrompts.Count == 0 ? double.NaN
        : Evaluation.GreedyAccuracy(Policy, heldOutPrompts, heldOutText, ids => Tokenizer.Decode(ids.ToArray(), skipSpecialTokens: true),
            Config.Sampling.MaxNewTokens, stops);

    /// <summary>Releases the models and the learner.</summary>
    public void Dispose()
    {
        Learner.Dispose();
        GeneratorModel?.Dispose();
        Reference.Dispose();
        Policy.Dispose();
    }

    /// <summary>Supervised warm start on the task's reference answers (sft.steps of the configuration; a run's own warm start).</summary>
    public static void WarmStart(TransformerModel policy, ITokenizer tokenizer, TaskSource tasks, RunConfig config, Action<string> log, ConsoleProgress? progress,
        CancellationToken cancellationToken)
    {
        var eos = tokenizer.EosId is { } e ? new[] { e } : Array.Empty<int>();
        var examples = Enumerable.Range(0, 20_000).Select(i => tasks.Training(-20_000 + i))
            .Select(t => new SftExample(tokenizer.Encode(t.Prompt), tokenizer.Encode(t.Answer).Concat(eos).ToArray())).ToList();
        var sft = new SftOptions { Steps = config.Sft.Steps, LearningRate = config.Sft.LearningRate, ExamplesPerStep = config.Sft.ExamplesPerStep, RowLength = 64, Seed = config.Seed };
        var every = Math.Max(1, sft.Steps / 5);
        log($"SFT warm start: {sft.Steps} steps of {sft.ExamplesPerStep} examples");
        progress?.Begin("SFT step", sft.Steps);
        SupervisedFineTuning.Train(policy, examples, sft, s =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (progress is not null) progress.Report(s.Step, $"loss {s.Loss:F3}");
            else if (s.Step % every == 0 || s.Step == sft.Steps) log($"  sft step {s.Step}/{sft.Steps} loss {s.Loss:F3}");
        });
        progress?.End();
    }
}

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
        // Those threads would otherwise each get a malloc arena of libtorch's freed memory (see MallocArenas).
        MallocArenas.Limit();
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
    public static LearnerWorkerOptions LearnerOptions(RunConfig config, string serviceId) => new()
    {
        PromptsPerStep = config.Algorithm.PromptsPerStep, MaxPolicyLag = MaxPolicyLag(config), Steps = config.Train.Steps,
        TimeLimit = config.Train.TimeLimitMinutes > 0 ? TimeSpan.FromMinutes(config.Train.TimeLimitMinutes) : null,
        PublishAdaptersOnly = config.Model.LoraRank > 0, EvalEvery = config.Train.EvalEvery,
        CheckpointEvery = config.Train.CheckpointEvery > 0 ? config.Train.CheckpointEvery : 1, ServiceId = serviceId,
        MaxPrompts = config.Task.MaxPrompts,
    };

    /// <summary>Separate service processes need a shared bus and weight store: inproc and memory are refused, naming the key.</summary>
    public static void RequireSharedTransports(RunConfig config)
    {
        if (!Transports.IsShared(config.Transport.Bus))
            throw new ConfigException("config key 'transport.bus': 'inproc' connects only the services of one process; a service process needs redis://HOST:PORT or kafka://HOST:PORT (or use `onlinerl run`)");
        if (!Transports.IsShared(config.Transport.Weights))
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
    public static async Task<LearnerWorker> RunLearnerAsync(RunConfig config, IEventBus bus, IBlobStore blobs, Action<string> log,
        CancellationToken cancellationToken)
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
        var worker = new LearnerWorker(bus, store, session.Learner, session.Policy, LearnerOptions(config, config.Service.Id), config.RunId, initial,
            session.HeldOutCount > 0 ? session.Evaluate : null, report =>
            {
                log(InProcessRun.ProgressLine(report));
                tensorboard?.Step(report);
            }, session.StateStore, ledger,
            Transports.CreateGeneratorStatus(config.Transport, WeightsPrefix(config)));
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
