using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineRl.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineRl.Bench;

/// <summary>
/// Generation throughput with the KV-cache sampler against the PyTorch reference generator
/// (bench/qwen2_reference.py, its own KV cache) on the same ~20M-parameter checkpoint. Each side runs in
/// a fresh process so that its peak resident memory is its own.
/// </summary>
internal static class GenerationBench
{
    /// <summary>A ~20M-parameter Llama-style model (vocabulary 4096, width 512, 6 layers).</summary>
    public static ModelConfig BenchModel => new()
    {
        ModelType = "llama", VocabSize = 4096, HiddenSize = 512, IntermediateSize = 1376, NumLayers = 6, NumHeads = 8, NumKvHeads = 8,
        HeadDim = 64, MaxPositionEmbeddings = 512, TieWordEmbeddings = true,
    };

    /// <summary>Writes the benchmark checkpoint into <paramref name="directory"/> (random weights, seed 0).</summary>
    public static long CreateCheckpoint(string directory)
    {
        torch.manual_seed(0);
        using var model = new TransformerModel(BenchModel);
        Checkpoint.Save(model, directory);
        return model.ParameterCount;
    }

    /// <summary>
    /// `onlinerl-bench bench-generation --model DIR --batch B --new-tokens N --threads T`: one measurement in this
    /// process, printed as JSON (tokens per second, best of the repeats, and peak resident memory).
    /// </summary>
    public static int RunChild(Options options)
    {
        var directory = options.String("model", "");
        var batch = options.Int("batch", 1);
        var newTokens = options.Int("new-tokens", 256);
        var promptLength = options.Int("prompt-length", 16);
        var threads = options.Int("threads", Environment.ProcessorCount);
        var repeats = options.Int("repeats", 2);
        options.RejectUnknown();
        torch.set_num_threads(threads);
        using var model = Checkpoint.Load(directory);
        torch.manual_seed(0);
        var prompts = Enumerable.Range(0, batch)
            .Select(_ => torch.randint(0, model.Config.VocabSize, new long[] { promptLength }).data<long>().ToArray().Select(v => (int)v).ToArray()).ToList();
        var sampling = new SamplingOptions { MaxNewTokens = newTokens, Temperature = 1.0, Seed = 1 };
        var best = double.MaxValue;
        for (var r = 0; r < repeats; r++)
        {
            var clock = Stopwatch.StartNew();
            var completions = Sampler.Generate(model, prompts, sampling);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
            if (completions.Any(c => c.TokenIds.Length != newTokens)) throw new InvalidOperationException("a completion stopped early");
        }
        var result = new JsonObject
        {
            ["seconds"] = best, ["tokens_per_second"] = batch * newTokens / best, ["peak_rss_mb"] = PeakResidentMegabytes(),
        };
        Console.WriteLine(result.ToJsonString());
        return 0;
    }

    /// <summary>VmHWM of this process in MiB (Linux).</summary>
    private static double PeakResidentMegabytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        return double.NaN;
    }

    /// <summary>Runs a child process and parses the JSON object on its last output line.</summary>
    public static JsonObject RunJson(string program, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} failed ({process.ExitCode}): {stderr.Result.Trim()}");
        var last = stdout.Result.Trim().Split('\n')[^1];
        return JsonNode.Parse(last)?.AsObject() ?? throw new InvalidOperationException($"{program} printed no JSON: {last}");
    }

    /// <summary>The arguments that run this same `onlinerl` again (dotnet onlinerl.dll, or the apphost).</summary>
    public static (string Program, List<string> Prefix) Self()
    {
        var entry = Environment.ProcessPath ?? "dotnet";
        var assembly = typeof(GenerationBench).Assembly.Location;
        return Path.GetFileNameWithoutExtension(entry) == "dotnet" ? (entry, new List<string> { assembly }) : (entry, new List<string>());
    }

    /// <summary>
    /// The generation rows of `onlinerl-bench bench` as a markdown section: batch 1 and 16, 256 new tokens (32 with
    /// --quick), tokens per second and peak memory of each side; ratio = ours / reference tokens per second.
    /// </summary>
    public static string Section(bool quick, int threads, string? python, string referenceScript, Action<string> progress)
    {
        var directory = Path.Combine(Path.GetTempPath(), $"onlinerl-bench-model-{Environment.ProcessId}");
        try
        {
            var parameters = CreateCheckpoint(directory);
            var newTokens = quick ? 32 : 256;
            var text = new System.Text.StringBuilder();
            text.AppendLine().AppendLine($"## Generation with a KV cache ({parameters / 1e6:F1}M-parameter Llama-style model, float32, {threads} threads)").AppendLine();
            text.AppendLine("Sampling at temperature 1 from 16-token prompts; ours: `Sampler.Generate` (preallocated KV cache); reference: " +
                            "`bench/qwen2_reference.py generate`, a plain PyTorch forward with its own (concatenating) KV cache. Each side " +
                            "runs in a fresh process (best of 2 runs); peak memory is that process's peak resident set. " +
                            "Ratio = our tokens/s / reference tokens/s, so >= 1.0 means we are as fast or faster.").AppendLine();
            text.AppendLine("| metric | ours | reference | ratio | target | peak RSS ours | peak RSS reference |");
            text.AppendLine("|---|---:|---:|---:|---|---:|---:|");
            foreach (var batch in new[] { 1, 16 })
            {
                var (ours, reference) = Compare(directory, batch, newTokens, threads, python, referenceScript);
                var ourRate = ours["tokens_per_second"]!.GetValue<double>();
                var refRate = reference?["tokens_per_second"]!.GetValue<double>();
                var ratio = refRate is { } r ? (ourRate / r).ToString("F2", CultureInfo.InvariantCulture) : "n/a";
                var met = refRate is { } rr ? (ourRate / rr >= 1.0 ? ">= 1.0: met" : ">= 1.0: NOT met") : "-";
                var row = string.Create(CultureInfo.InvariantCulture,
                    $"| generate {newTokens} tokens, batch {batch} | {ourRate:F0} tok/s | {(refRate is { } x ? x.ToString("F0", CultureInfo.InvariantCulture) + " tok/s" : "n/a")} | {ratio} | {met} | {ours["peak_rss_mb"]!.GetValue<double>():F0} MiB | {(reference is null ? "n/a" : reference["peak_rss_mb"]!.GetValue<double>().ToString("F0", CultureInfo.InvariantCulture) + " MiB")} |");
                text.AppendLine(row);
                progress($"  generation, batch {batch}: ours {ourRate:F0} tok/s, reference {(refRate is { } y ? y.ToString("F0", CultureInfo.InvariantCulture) : "n/a")} tok/s, ratio {ratio}");
            }
            text.Append(RolloutSection(directory, quick, threads, progress));
            return text.ToString();
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Rollout throughput of the generator's two modes on the bench checkpoint: 32 prompts (8-48 tokens) × 4 completions
    /// that end at any of 128 stop tokens or after 128 tokens (16 prompts, 64 tokens with --quick), so completion lengths
    /// mix short and long as in RL rollouts. Static: <see cref="Sampler.Generate"/> on batches of 8 prompts (32 rows), each
    /// running until its longest completion ends; continuous: one <see cref="ContinuousBatcher"/> of 32 rows; and the
    /// continuous engine with a new weights version every <see cref="SwapEvery"/> decode steps, swapped in flight or
    /// between groups. Best of 2 alternating runs each, in this process.
    /// </summary>
    private const int SwapEvery = 32;
    private const string SwapInFlight = "continuous, swaps in flight, cache recomputed";
    private const string SwapInFlightKept = "continuous, swaps in flight, cache kept";
    private const string SwapBetweenGroups = "continuous, swaps between groups";

    private static string RolloutSection(string directory, bool quick, int threads, Action<string> progress)
    {
        const int group = 4, batchPrompts = 8;
        int promptCount = quick ? 16 : 32, maxNew = quick ? 64 : 128;
        torch.set_num_threads(threads);
        using var model = Checkpoint.Load(directory);
        var random = new Random(5);
        var prompts = Enumerable.Range(0, promptCount)
            .Select(_ => Enumerable.Range(0, random.Next(8, 49)).Select(_ => random.Next(model.Config.VocabSize)).ToArray()).ToList();
        var options = new SamplingOptions
        {
            CompletionsPerPrompt = group, MaxNewTokens = maxNew, Temperature = 1.0,
            StopTokenIds = Enumerable.Range(0, 128).Select(i => i * (model.Config.VocabSize / 128)).ToArray(),
        };
        (double Rate, double MeanLength, int Longest) Static()
        {
            var completions = prompts.Chunk(batchPrompts).SelectMany((batch, i) => Sampler.Generate(model, batch, options with { Seed = i })).ToList();
            return (completions.Sum(c => c.TokenIds.Length), completions.Average(c => c.TokenIds.Length), completions.Max(c => c.TokenIds.Length));
        }
        (double Rate, double MeanLength, int Longest) Continuous()
        {
            using var engine = new ContinuousBatcher(model, options, batchPrompts * group, prompts.Max(p => p.Length));
            for (var i = 0; i < prompts.Count; i++) engine.Add(prompts[i], i);
            var completions = engine.RunToEnd().SelectMany(g => g.Completions).ToList();
            return (completions.Sum(c => c.TokenIds.Length), completions.Average(c => c.TokenIds.Length), completions.Max(c => c.TokenIds.Length));
        }
        // A new weights version every SwapEvery decode steps, as a learner publishing while the generator samples. In
        // flight: the engine recomputes its running rows' keys/values under the "new" weights (the same tensors here, so
        // the completions stay comparable) and goes on; between groups: no prompt joins once a version is announced and
        // the swap waits until the running groups have ended. Prompts join one group ahead, as in the generator.
        (double Rate, double MeanLength, int Longest) Swapping(bool inFlight, bool recompute = true)
        {
            using var engine = new ContinuousBatcher(model, options, batchPrompts * group, prompts.Max(p => p.Length));
            var completions = new List<SampledCompletion>();
            var (next, announced, steps) = (0, 0L, 0L);
            while (next < prompts.Count || engine.OpenGroups > 0)
            {
                if (engine.WeightsVersion < announced && (inFlight || engine.OpenGroups == 0)) engine.WeightsChanged(announced, recompute);
                while (next < prompts.Count && engine.WaitingCompletions < group && engine.WeightsVersion == announced) engine.Add(prompts[next], next++);
                completions.AddRange(engine.Step().SelectMany(g => g.Completions));
                if (++steps % SwapEvery == 0) announced++;
            }
            return (completions.Sum(c => c.TokenIds.Length), completions.Average(c => c.TokenIds.Length), completions.Max(c => c.TokenIds.Length));
        }
        var best = new Dictionary<string, (double Rate, double MeanLength, int Longest)>();
        for (var repeat = 0; repeat < 2; repeat++)
        {
            foreach (var (name, run) in new (string, Func<(double, double, int)>)[]
                     {
                         ("static", Static), ("continuous", Continuous), (SwapInFlight, () => Swapping(inFlight: true)), (SwapInFlightKept, () => Swapping(inFlight: true, recompute: false)),
                         (SwapBetweenGroups, () => Swapping(inFlight: false)),
                     })
            {
                var clock = Stopwatch.StartNew();
                var (tokens, meanLength, longest) = run();
                var rate = tokens / clock.Elapsed.TotalSeconds;
                if (!best.TryGetValue(name, out var old) || rate > old.Rate) best[name] = (rate, meanLength, longest);
            }
        }
        var ratio = best["continuous"].Rate / best["static"].Rate;
        progress($"  rollout tokens/s: continuous {best["continuous"].Rate:F0}, static {best["static"].Rate:F0}, ratio {ratio:F2}");
        var text = new System.Text.StringBuilder();
        text.AppendLine().AppendLine($"## Generator rollouts: continuous vs static batching ({promptCount} prompts × {group} completions, up to {maxNew} tokens, {batchPrompts * group} rows, {threads} threads)").AppendLine();
        text.AppendLine("Completions end at any of 128 stop tokens (about 3% of the vocabulary) or at the length limit, so lengths mix short and long. " +
                        "Static: `Sampler.Generate` per batch of 8 prompts, each batch decoding until its longest completion ends; continuous: " +
                        "`ContinuousBatcher`, a finished row taken over by a waiting completion at the next step. Best of 2 alternating runs. " +
                        "Ratio = continuous tokens/s / static tokens/s.").AppendLine();
        text.AppendLine("| mode | generated tokens/s | mean completion length | longest |");
        text.AppendLine("|---|---:|---:|---:|");
        foreach (var name in new[] { "static", "continuous" })
            text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {best[name].Rate:F0} | {best[name].MeanLength:F1} | {best[name].Longest} |"));
        text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| ratio continuous / static | {ratio:F2} | | target >= 1.5: {(ratio >= 1.5 ? "met" : "NOT met")} |"));
        var swapRatio = best[SwapInFlight].Rate / best[SwapBetweenGroups].Rate;
        var keptRatio = best[SwapInFlightKept].Rate / best[SwapBetweenGroups].Rate;
        progress($"  rollout tokens/s with a new version every {SwapEvery} steps: in flight {best[SwapInFlight].Rate:F0} (cache kept {best[SwapInFlightKept].Rate:F0}), " +
                 $"between groups {best[SwapBetweenGroups].Rate:F0}, ratios {swapRatio:F2} and {keptRatio:F2}");
        text.AppendLine().AppendLine(
            $"With a new weights version every {SwapEvery} decode steps (continuous batching, same prompts): in flight, decoding goes on under the new " +
            "version with the running rows' keys/values recomputed (one batched forward over prompts and tokens so far: `sampling.swap_cache recompute`) " +
            "or kept (`keep`); between groups, no prompt joins once a version is announced and the swap waits for the running groups to end, so rows " +
            "idle behind the longest completion. Ratio = in flight / between groups.").AppendLine();
        text.AppendLine("| mode | generated tokens/s | mean completion length | longest |");
        text.AppendLine("|---|---:|---:|---:|");
        foreach (var name in new[] { SwapInFlight, SwapInFlightKept, SwapBetweenGroups })
            text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {best[name].Rate:F0} | {best[name].MeanLength:F1} | {best[name].Longest} |"));
        text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| ratio in flight (recomputed) / between groups | {swapRatio:F2} | | |"));
        text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| ratio in flight (kept) / between groups | {keptRatio:F2} | | |"));
        return text.ToString();
    }

    /// <summary>Our tokens/s and the reference's, for one batch size, each in its own process.</summary>
    public static (JsonObject Ours, JsonObject? Reference) Compare(string directory, int batch, int newTokens, int threads, string? python, string referenceScript)
    {
        var (program, prefix) = Self();
        var ours = RunJson(program, prefix.Concat(new[]
        {
            "bench-generation", "--model", directory, "--batch", batch.ToString(CultureInfo.InvariantCulture),
            "--new-tokens", newTokens.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture),
        }));
        if (python is null) return (ours, null);
        var spec = JsonSerializer.Serialize(new { batch, prompt_len = 16, new_tokens = newTokens, threads, repeats = 2 });
        var reference = RunJson(python, new[] { referenceScript, "generate", directory, spec });
        return (ours, reference);
    }
}
