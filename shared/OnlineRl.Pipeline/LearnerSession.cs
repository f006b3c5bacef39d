using OnlineRl.Algorithms;
using OnlineRl.Model;
using OnlineRl.Rewards;
using OnlineRl.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Training;

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
        var heads = config.Algorithm.Name == AlgorithmKind.Ppo ? ModelHeads.Value : ModelHeads.None;
        var stateStore = config.Train.StateDir.Length > 0 ? new LearnerStateStore(config.Train.StateDir) : null;
        var policy = PolicySetup.Create(config, tokenizer, heads, device);
        log($"policy: {policy.Config.ModelType}, {policy.ParameterCount:N0} parameters, {config.Model.Layers} layers; task {config.Task.Kind}; algorithm {ConfigNames.Algorithm.Of(config.Algorithm.Name)}");
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
        var learner = new Learner(policy, reference, PipelineServices.LearnerOptions(config));
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
