using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineRl.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineRl.Cli;

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
    /// `onlinerl bench-generation --model DIR --batch B --new-tokens N --threads T`: one measurement in this
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
    /// The generation rows of `onlinerl bench` as a markdown section: batch 1 and 16, 256 new tokens (32 with
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
            return text.ToString();
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
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
