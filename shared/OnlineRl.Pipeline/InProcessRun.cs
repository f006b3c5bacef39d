using System.Diagnostics;
using OnlineRl.Algorithms;
using OnlineRl.Messaging;
using OnlineRl.Model;
using OnlineRl.Tokenizers;
using OnlineRl.Torch;
using OnlineRl.Training;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline;

/// <summary>The outcome of a run.</summary>
/// <param name="InitialAccuracy">Held-out greedy accuracy before RL (after any SFT warm start).</param>
/// <param name="FinalAccuracy">Held-out greedy accuracy at the end.</param>
/// <param name="Steps">Learner reports, one per update.</param>
/// <param name="ElapsedSeconds">Wall time of the RL phase.</param>
/// <param name="DroppedStale">Groups dropped for staleness.</param>
/// <param name="TrainedRollouts">Rollout ids trained on (each once).</param>
/// <param name="OutputDir">Where the report, metrics and checkpoint were written.</param>
public sealed record RunSummary(double InitialAccuracy, double FinalAccuracy, IReadOnlyList<StepReport> Steps, double ElapsedSeconds,
    long DroppedStale, IReadOnlyList<string> TrainedRollouts, string OutputDir);

/// <summary>
/// The all-in-one run: prompt feeder, generator, scorer and learner as concurrent workers in one
/// process, talking only through the in-process event bus, with weights going through the weight store.
/// </summary>
public static class InProcessRun
{
    /// <summary>Runs <paramref name="config"/>; progress lines go to <paramref name="log"/>.</summary>
    public static async Task<RunSummary> RunAsync(RunConfig config, Action<string> log, CancellationToken cancellationToken = default)
    {
        // Generator and learner do long synchronous tensor work on pool threads; keep threads for the bus.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 16), io);
        torch.set_num_threads(config.Threads > 0 ? config.Threads : Environment.ProcessorCount);
        torch.manual_seed(config.Seed);
        var device = Device.Parse(config.Device);
        Directory.CreateDirectory(config.OutputDir);
        File.WriteAllText(Path.Combine(config.OutputDir, "config.json"), config.ToJson());

        var tokenizer = PolicySetup.Tokenizer(config);
        var tasks = TaskSource.Create(config.Task, config.Seed, log);
        var heads = config.Algorithm.Name == "ppo" ? ModelHeads.Value : ModelHeads.None;
        using var policy = PolicySetup.Create(config, tokenizer, heads, device);
        log($"policy: {policy.Config.ModelType}, {policy.parameter_count():N0} parameters, {config.Model.Layers} layers; task {config.Task.Kind}; algorithm {config.Algorithm.Name}");

        if (config.Model.Checkpoint.Length == 0 && config.Sft.Steps > 0)
            WarmStart(policy, tokenizer, tasks, config, log);

        var stops = tokenizer.EosId is { } eos ? new[] { eos } : Array.Empty<int>();
        var heldOutPrompts = tasks.HeldOut.Select(t => tokenizer.Encode(t.Prompt)).ToList();
        var heldOutAnswers = tasks.HeldOut.Select(t => t.Answer).ToList();
        double Evaluate() => heldOutPrompts.Count == 0 ? double.NaN
            : Evaluation.GreedyAccuracy(policy, heldOutPrompts, heldOutAnswers, ids => tokenizer.Decode(ids.ToArray(), skipSpecialTokens: true),
                config.Sampling.MaxNewTokens, stops);
        var initialAccuracy = Evaluate();
        log($"held-out accuracy before RL: {initialAccuracy:P1} ({heldOutPrompts.Count} problems)");

        using var reference = PolicySetup.Copy(policy, ModelHeads.None);
        foreach (var p in reference.parameters()) p.requires_grad = false;
        using var generatorModel = PolicySetup.Copy(policy, ModelHeads.None);
        if (config.Model.LoraRank > 0)
        {
            var lora = LoraConfig.Default with { Rank = config.Model.LoraRank, Alpha = config.Model.LoraAlpha };
            LoraAdapters.Attach(policy, lora);
            if (policy.value_head is not null) foreach (var p in policy.value_head.parameters()) p.requires_grad = true;
            LoraAdapters.Attach(generatorModel, lora);
            generatorModel.load_state_dict(LoraAdapters.AdapterTensors(policy).ToDictionary(kv => kv.Key["base_model.model.".Length..], kv => kv.Value), strict: false);
        }

        var algorithm = config.Algorithm;
        var maxLag = config.Train.Overlap ? config.Train.MaxPolicyLag : 0;
        using var learner = new Learner(policy, reference, LearnerOptionsFrom(config));
        await using var bus = new InProcessEventBus();
        var store = new WeightStore(new InMemoryBlobStore(), new WeightStoreOptions { Prefix = $"onlinerl:{config.RunId}:weights" });
        var reports = new List<StepReport>();
        var initial = await LearnerWorker.PublishWeightsAsync(store, policy, config.Model.LoraRank > 0, 0, cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        var learnerWorker = new LearnerWorker(bus, store, learner, policy, new LearnerWorkerOptions
        {
            PromptsPerStep = algorithm.PromptsPerStep, MaxPolicyLag = maxLag, Steps = config.Train.Steps,
            TimeLimit = config.Train.TimeLimitMinutes > 0 ? TimeSpan.FromMinutes(config.Train.TimeLimitMinutes) : null,
            PublishAdaptersOnly = config.Model.LoraRank > 0, EvalEvery = config.Train.EvalEvery,
        }, config.RunId, startVersion: initial.Version, Evaluate, report =>
        {
            reports.Add(report);
            log(ProgressLine(report));
            if (config.Train.CheckpointEvery > 0 && report.Step % config.Train.CheckpointEvery == 0)
            {
                // Runs on the learner's thread between updates, so the weights are consistent.
                var directory = Path.Combine(config.OutputDir, $"checkpoint-{report.Step}");
                Checkpoint.Save(policy, directory);
                ModelTokenizers.SaveWithModel(tokenizer, config.Model.Checkpoint.Length > 0 ? config.Model.Checkpoint : null, directory);
            }
        });
        var generator = new GeneratorWorker(bus, store, generatorModel, tokenizer, config.Sampling, config.RunId, "generator-0",
            heldVersion: initial.Version, batchPrompts: Math.Min(algorithm.PromptsPerStep, 32), seed: config.Seed);
        var inFlight = (long)(1 + maxLag) * algorithm.PromptsPerStep;
        var feeder = new FeederWorker(bus, tasks, tokenizer, config.RunId, inFlight);
        using var rewardModel = config.Reward.Model.Length > 0 ? Checkpoint.Load(config.Reward.Model, ScalarType.Float32, device) : null;
        if (rewardModel is not null && (rewardModel.score is null || rewardModel.Config.VocabSize < tokenizer.VocabSize))
            throw new ConfigException($"reward.model {config.Reward.Model}: needs a reward head (train it with `onlinerl train-rm`) and the policy's vocabulary");
        IGroupScorer groupScorer = rewardModel is null
            ? new RuleScorer(tasks.Reward)
            : new RewardModelScorer(rewardModel, Path.GetFileName(Path.GetFullPath(config.Reward.Model)), config.Reward.KeepRules ? new RuleScorer(tasks.Reward) : null, config.Reward.ModelWeight);
        var scorer = new ScorerWorker(bus, groupScorer, config.RunId, "scorer-0");

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
        if (config.Model.LoraRank > 0) LoraAdapters.Merge(policy);
        var finalAccuracy = Evaluate();
        log($"held-out accuracy after {reports.Count} steps ({elapsed:F0} s): {finalAccuracy:P1} (was {initialAccuracy:P1}); " +
            $"dropped for staleness: {learnerWorker.DroppedStale}; generator on weights v{generator.HeldVersion} of v{learnerWorker.Version}");

        var checkpointDir = Path.Combine(config.OutputDir, "checkpoint");
        Checkpoint.Save(policy, checkpointDir);
        ModelTokenizers.SaveWithModel(tokenizer, config.Model.Checkpoint.Length > 0 ? config.Model.Checkpoint : null, checkpointDir);
        var summary = new RunSummary(initialAccuracy, finalAccuracy, reports, elapsed, learnerWorker.DroppedStale, learnerWorker.TrainedRollouts, config.OutputDir);
        RunReport.Write(summary, config);
        log($"wrote {Path.Combine(config.OutputDir, "report.md")}, metrics.csv, reward.svg and checkpoint/");
        return summary;
    }

    /// <summary>Supervised warm start on the task's reference answers.</summary>
    private static void WarmStart(TransformerModel policy, ITokenizer tokenizer, TaskSource tasks, RunConfig config, Action<string> log)
    {
        var eos = tokenizer.EosId is { } e ? new[] { e } : Array.Empty<int>();
        var examples = Enumerable.Range(0, 20_000).Select(i => tasks.Training(-20_000 + i))
            .Select(t => new SftExample(tokenizer.Encode(t.Prompt), tokenizer.Encode(t.Answer).Concat(eos).ToArray())).ToList();
        var sft = new SftOptions { Steps = config.Sft.Steps, LearningRate = config.Sft.LearningRate, ExamplesPerStep = config.Sft.ExamplesPerStep, RowLength = 64, Seed = config.Seed };
        var every = Math.Max(1, sft.Steps / 5);
        log($"SFT warm start: {sft.Steps} steps of {sft.ExamplesPerStep} examples");
        SupervisedFineTuning.Train(policy, examples, sft, s =>
        {
            if (s.Step % every == 0 || s.Step == sft.Steps) log($"  sft step {s.Step}/{sft.Steps} loss {s.Loss:F3}");
        });
    }

    /// <summary>The learner settings named by a run configuration.</summary>
    public static LearnerOptions LearnerOptionsFrom(RunConfig config)
    {
        var a = config.Algorithm;
        return new LearnerOptions
        {
            Algorithm = a.Name switch { "ppo" => AlgorithmKind.Ppo, "dpo" => AlgorithmKind.Dpo, _ => AlgorithmKind.Grpo },
            LearningRate = a.LearningRate, WarmupSteps = a.WarmupSteps, TotalSteps = Math.Max(config.Train.Steps, 1000),
            MaxGradNorm = a.MaxGradNorm, Epochs = a.Epochs, Minibatches = a.Minibatches, Temperature = config.Sampling.Temperature,
            Grpo = new GrpoOptions
            {
                ClipLow = a.ClipLow, ClipHigh = a.ClipHigh, Beta = a.KlBeta, MaxImportanceWeight = a.MaxImportanceWeight,
                KlEstimator = a.KlEstimator switch { "k1" => KlEstimator.K1, "k2" => KlEstimator.K2, "none" => KlEstimator.None, _ => KlEstimator.K3 },
                Aggregation = a.LossAggregation switch
                {
                    "sequence" => LossAggregation.SequenceMean, "constant" => LossAggregation.SumOverMaxTokens, _ => LossAggregation.TokenMean,
                },
                MaxCompletionLength = config.Sampling.MaxNewTokens,
            },
            StdNormalize = a.StdNormalize, FilterEqualGroups = a.FilterEqualGroups,
            Dpo = new DpoOptions
            {
                Beta = a.DpoBeta, LabelSmoothing = a.DpoLabelSmoothing, ReferenceFree = a.DpoReferenceFree, SftWeight = a.DpoSftWeight,
                LossType = a.DpoLoss == "ipo" ? DpoLossType.Ipo : DpoLossType.Sigmoid,
            },
            Gamma = a.Gamma, Lambda = a.Lambda, ValueClip = a.ValueClip, ValueCoefficient = a.ValueCoefficient, PpoKlBeta = a.KlBeta,
            ShuffleRewards = config.Train.ShuffleRewards, Seed = config.Seed,
        };
    }

    private static string ProgressLine(StepReport r)
    {
        double M(string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
        var accuracy = r.HeldOutAccuracy is { } a ? $"  held-out {a:P1}" : "";
        return $"step {r.Step,4}  reward {M("reward_mean"),6:F3}  loss {M("loss"),8:F4}  kl {M("kl"),7:F4}  " +
               $"tok/s {M("tokens_per_second"),6:F0}  lag {r.PolicyLagMean:F2}  v{r.PolicyVersion}  {r.ElapsedSeconds,5:F0}s{accuracy}";
    }
}
