using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineRl.Hosting;
using OnlineRl.Model;
using OnlineRl.Rewards;
using OnlineRl.Pipeline;
using OnlineRl.ServiceDefaults;
using static TorchSharp.torch;

namespace OnlineRl.Bench;

/// <summary>
/// `onlinerl-bench compare-reference`: our whole pipeline and the plain PyTorch trainer (bench/reference_trainer.py, Debian's
/// /usr/bin/python3) from the same starting checkpoint, with the same hyper-parameters, seed, held-out set and budget,
/// one algorithm after the other (never both at once: they would share the cores). Writes the curves of both
/// (held-out accuracy against learner updates and against seconds of generation + learning, evaluations excluded),
/// a table and one HTML page of charts.
/// </summary>
internal static class CompareReferenceCommand
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>One point of a curve.</summary>
    private sealed record Point(long Update, double Seconds, double Accuracy);

    /// <summary>Both curves of one algorithm.</summary>
    private sealed record Comparison(string Algorithm, IReadOnlyList<Point> Ours, IReadOnlyList<Point> Reference);

    public static async Task<int> RunAsync(Options options)
    {
        var output = options.String("out", "runs/compare-reference");
        var configPath = options.String("config", Path.Combine(AppContext.BaseDirectory, "configs", "grpo-addition.yaml"));
        var start = options.String("start", "");
        var algorithms = options.String("algorithms", "grpo,ppo,dpo").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var minutes = options.Double("minutes", 3);
        var steps = options.Int("steps", 300);
        var evalEvery = options.Int("eval-every", 25);
        var python = options.String("python", "/usr/bin/python3");
        var overrides = options.Unread();
        if (algorithms.Length == 0 || algorithms.Any(a => a is not ("grpo" or "ppo" or "dpo")))
            throw new UsageException("--algorithms: a comma-separated list of grpo, ppo, dpo");
        if (!File.Exists(python)) throw new UsageException($"--python {python}: not found (apt-get install python3-torch)");
        var progress = ConsoleProgress.ForConsole();
        Action<string> log = progress.Line;
        RunConfig Config(IReadOnlyDictionary<string, string> keys)
        {
            var all = new Dictionary<string, string>(overrides);
            foreach (var (key, value) in keys) all[key] = value;
            return ServiceConfiguration.Load(RunConfig.Load, configPath, all);
        }
        try
        {
            var baseConfig = Config(new Dictionary<string, string>());
            if (baseConfig.Task.Kind != "addition") throw new UsageException("compare-reference runs the addition task (task.kind addition)");
            Directory.CreateDirectory(output);
            if (start.Length == 0)
            {
                start = Path.Combine(output, "start");
                MakeStart(baseConfig, start, log);
            }
            var heldOut = Path.Combine(output, "heldout.jsonl");
            WriteHeldOut(baseConfig, heldOut);
            var comparisons = new List<Comparison>();
            foreach (var algorithm in algorithms)
            {
                var config = Config(new Dictionary<string, string>
                {
                    ["run_id"] = $"compare-{algorithm}", ["output_dir"] = Path.Combine(output, $"ours-{algorithm}"),
                    ["model.checkpoint"] = start, ["sft.steps"] = "0", ["algorithm.name"] = algorithm,
                    ["train.steps"] = steps.ToString(Invariant), ["train.time_limit_minutes"] = minutes.ToString(Invariant),
                    ["train.eval_every"] = evalEvery.ToString(Invariant),
                });
                log($"== {algorithm}: ours ({config.Train.Steps} updates or {minutes} min)");
                var ours = await RunOursAsync(config, log);
                log($"== {algorithm}: reference ({config.Train.Steps} updates or {minutes} min)");
                var reference = RunReference(python, config, start, heldOut, Path.Combine(output, $"reference-{algorithm}.csv"), minutes, log);
                comparisons.Add(new Comparison(algorithm, ours, reference));
                // Written after every algorithm: a long comparison stopped half-way keeps what it measured.
                Write(output, comparisons, baseConfig, steps, minutes);
            }
            log($"wrote {Path.Combine(output, "comparison.md")} and comparison.html");
            return 0;
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    /// <summary>The starting policy: the run's own SFT warm start (sft.* of the configuration), saved as a checkpoint.</summary>
    private static void MakeStart(RunConfig config, string directory, Action<string> log)
    {
        PipelineServices.ConfigureProcess(config);
        var tokenizer = PolicySetup.Tokenizer(config);
        var tasks = TaskSource.Create(config.Task, config.Seed, log);
        using var policy = PolicySetup.Create(config, tokenizer, ModelHeads.None, CPU);
        LearnerSession.WarmStart(policy, tokenizer, tasks, config, log, null, CancellationToken.None);
        Checkpoint.Save(policy, directory);
        ModelTokenizers.SaveWithModel(tokenizer, null, directory);
        log($"starting policy: {directory}");
    }

    /// <summary>The held-out problems ours evaluates, for the reference to evaluate the same ones.</summary>
    private static void WriteHeldOut(RunConfig config, string path)
    {
        var tasks = TaskSource.Create(config.Task, config.Seed);
        File.WriteAllLines(path, tasks.HeldOut.Select(t => new JsonObject { ["prompt"] = t.Prompt, ["answer"] = t.Answer }.ToJsonString()));
    }

    private static async Task<IReadOnlyList<Point>> RunOursAsync(RunConfig config, Action<string> log)
    {
        var summary = await InProcessRun.RunAsync(config, line =>
        {
            if (line.Contains("held-out", StringComparison.Ordinal)) log(line);
        }, transports: new Transports());
        var points = new List<Point> { new(0, 0, summary.InitialAccuracy) };
        points.AddRange(summary.Steps.Where(s => s.HeldOutAccuracy is not null)
            .Select(s => new Point(s.Step, s.ElapsedSeconds - s.EvaluationSeconds, s.HeldOutAccuracy!.Value)));
        var last = summary.Steps.LastOrDefault();
        if (last is not null && last.HeldOutAccuracy is null)
            points.Add(new Point(last.Step, last.ElapsedSeconds - last.EvaluationSeconds, summary.FinalAccuracy));
        return points;
    }

    /// <summary>Runs bench/reference_trainer.py with the configuration's settings and reads its curve.</summary>
    private static IReadOnlyList<Point> RunReference(string python, RunConfig config, string start, string heldOut, string csv, double minutes,
        Action<string> log)
    {
        var a = config.Algorithm;
        var settings = new JsonObject
        {
            ["checkpoint"] = Path.GetFullPath(start), ["heldout"] = Path.GetFullPath(heldOut), ["csv"] = Path.GetFullPath(csv),
            ["algorithm"] = ConfigNames.Algorithm.Of(a.Name), ["steps"] = config.Train.Steps, ["seconds"] = minutes * 60,
            ["learning_rate"] = a.LearningRate, ["warmup_steps"] = a.WarmupSteps, ["prompts_per_step"] = a.PromptsPerStep,
            ["group_size"] = config.Sampling.GroupSize, ["temperature"] = config.Sampling.Temperature,
            ["max_new_tokens"] = config.Sampling.MaxNewTokens, ["max_digits"] = config.Task.MaxDigits,
            ["clip"] = a.ClipLow, ["kl_beta"] = a.KlBeta, ["dpo_beta"] = a.DpoBeta, ["dpo_sft_weight"] = a.DpoSftWeight, ["epochs"] = a.Epochs,
            ["filter_equal_groups"] = a.FilterEqualGroups,
            ["gamma"] = a.Gamma, ["lam"] = a.Lambda, ["value_coefficient"] = a.ValueCoefficient, ["value_clip"] = a.ValueClip,
            ["shuffle_rewards"] = config.Train.ShuffleRewards, ["eval_every"] = config.Train.EvalEvery,
            ["seed"] = config.Seed, ["threads"] = config.Threads > 0 ? config.Threads : Environment.ProcessorCount,
        };
        var script = Path.Combine(AppContext.BaseDirectory, "bench", "reference_trainer.py");
        var info = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add(settings.ToJsonString());
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {python}");
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) log(e.Data);
        };
        process.BeginErrorReadLine();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{script} exited with code {process.ExitCode}");
        log($"reference: {stdout.Trim().Split('\n').Last()}");
        return File.ReadAllLines(csv).Skip(1).Select(line => line.Split(','))
            .Select(f => new Point(long.Parse(f[0], Invariant), double.Parse(f[1], Invariant), double.Parse(f[2], Invariant))).ToList();
    }

    private static void Write(string output, IReadOnlyList<Comparison> comparisons, RunConfig config, int steps, double minutes)
    {
        var md = new StringBuilder();
        md.AppendLine("# Ours against the plain PyTorch reference trainer");
        md.AppendLine();
        var a = config.Algorithm;
        var setup = string.Create(Invariant, $"Same starting checkpoint, held-out set ({config.Task.EvalSize} problems, greedy exact match), seed {config.Seed}, {a.PromptsPerStep} prompts x {config.Sampling.GroupSize} at temperature {config.Sampling.Temperature}, learning rate {a.LearningRate} ({a.WarmupSteps} warm-up steps), budget {steps} updates or {minutes} min each.");
        md.AppendLine(setup + " Seconds count generation and learning, not the held-out evaluations; ours overlaps generation with learning, the reference alternates.");
        md.AppendLine();
        md.AppendLine("| algorithm | side | update | seconds | held-out accuracy |");
        md.AppendLine("|---|---|---:|---:|---:|");
        foreach (var c in comparisons)
            foreach (var (side, points) in new[] { ("ours", c.Ours), ("reference", c.Reference) })
                foreach (var p in points)
                    md.AppendLine(string.Create(Invariant, $"| {c.Algorithm} | {side} | {p.Update} | {p.Seconds:F0} | {p.Accuracy:P1} |"));
        File.WriteAllText(Path.Combine(output, "comparison.md"), md.ToString());

        var html = new StringBuilder();
        html.AppendLine("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>ours vs reference</title></head>\n<body style=\"font-family: sans-serif; max-width: 1500px\">");
        html.AppendLine("<h1>Held-out accuracy: ours (blue) against the plain PyTorch reference (orange)</h1>");
        html.AppendLine($"<p>{WebUtility.HtmlEncode(setup)}</p>");
        foreach (var c in comparisons)
        {
            html.AppendLine($"<h2 id=\"{c.Algorithm}\">{c.Algorithm}</h2><div style=\"display: flex\">");
            foreach (var (axis, x) in new (string, Func<Point, double>)[] { ("learner update", p => p.Update), ("seconds", p => p.Seconds) })
            {
                var series = new List<RunReport.Series>
                {
                    new("ours", "#1f77b4", c.Ours.Select(p => (x(p), p.Accuracy)).ToList()),
                    new("reference", "#ff7f0e", c.Reference.Select(p => (x(p), p.Accuracy)).ToList(), Dashed: true),
                };
                var maxX = Math.Max(1, c.Ours.Concat(c.Reference).Max(x));
                html.AppendLine($"<div style=\"flex: 1\">{RunReport.LineChart($"{c.Algorithm}: held-out accuracy per {axis}", series, maxX, (0, 1), xLabel: axis)}</div>");
            }
            html.AppendLine("</div>");
        }
        html.AppendLine("</body>\n</html>");
        File.WriteAllText(Path.Combine(output, "comparison.html"), html.ToString());
    }
}
