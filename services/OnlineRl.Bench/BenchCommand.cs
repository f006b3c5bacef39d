using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OnlineRl.Model;
using OnlineRl.Pipeline;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;

namespace OnlineRl.Bench;

/// <summary>
/// `onlinerl-bench bench`: times TorchSharp (libtorch 2.10) against /usr/bin/python3's torch (Debian's 1.13) on this
/// machine in one run, with the same workloads and thread count on both sides, and writes a markdown
/// table. The Python side (bench/reference.py) runs as a subprocess that is asked to time one block at
/// a time, so blocks of ours and of the reference alternate and a noisy machine affects both alike.
/// Each number is the minimum over the repeats (after a warm-up); per-op rows time a tight loop and
/// divide by its length.
/// </summary>
internal static class BenchCommand
{
    private const string Python = "/usr/bin/python3";
    private const string BlasLink = "/lib/x86_64-linux-gnu/libblas.so.3";
    private const double OverheadTarget = 1.1;

    /// <summary>The sizes both sides use; serialized (snake_case) as reference.py's argument.</summary>
    private sealed record Plan(int Threads, double BudgetS, int OpIters, int OpRepeats, double WarmupS, int InplaceN, int InplaceIters, int InplaceRepeats,
        int MatmulN, int MatmulRepeats, MlpPlan Mlp);

    private sealed record MlpPlan(int Inputs, int Hidden, int Layers, int Classes, int Batch, int Steps, int Repeats);

    internal enum Unit { Micro, Milli, GFlops }

    /// <summary>
    /// One table row: <see cref="Count"/> iterations per timed block, <see cref="Repeats"/> blocks per side.
    /// <see cref="Parallel"/> workloads use libtorch's OpenMP threads, which keep spinning for a few
    /// milliseconds after each parallel region; such blocks start after a short pause so that one side's
    /// spinning threads do not slow the other side's block on a machine with few cores.
    /// </summary>
    internal sealed record Metric(string Key, string Label, Unit Unit, double? Target, int Count, int Repeats, bool Parallel = false);

    /// <summary>Blocks per side every row gets, even past its time budget.</summary>
    private const int MinimumBlocks = 5;

    private static readonly TimeSpan SettlePause = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// One row's outcome, in seconds per iteration: each side's fastest block, and the median over the
    /// block pairs (ours, then the reference's right after it) of our time / the reference's time.
    /// </summary>
    internal sealed record Result(double Ours, double? Reference, double? PairedMedianRatio, int Blocks);

    /// <summary>What the reference said about itself at start.</summary>
    private sealed record ReferenceInfo(string TorchVersion, int Threads, string? Library);

    private static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static int Run(Options options)
    {
        var outPath = options.String("out", "bench-results.md");
        var quick = options.Flag("quick");
        var only = options.String("only", "all");
        options.RejectUnknown();
        if (only is not ("all" or "binding" or "generation" or "rl")) throw new UsageException($"--only: '{only}' is not binding, generation or rl");
        if (string.IsNullOrWhiteSpace(outPath)) throw new UsageException("--out needs a file name");
        var outDirectory = Path.GetDirectoryName(Path.GetFullPath(outPath));
        if (outDirectory is not null && !Directory.Exists(outDirectory))
            throw new UsageException($"--out: the folder {outDirectory} does not exist");

        var threads = torch.get_num_threads(); // all cores, or ONLINERL_NUM_THREADS
        var plan = quick
            ? new Plan(threads, BudgetS: 1.0, OpIters: 1_000, OpRepeats: 30, WarmupS: 0.1, InplaceN: 1 << 18, InplaceIters: 100, InplaceRepeats: 10, MatmulN: 1024, MatmulRepeats: 8,
                new MlpPlan(Inputs: 128, Hidden: 256, Layers: 2, Classes: 10, Batch: 64, Steps: 5, Repeats: 10))
            : new Plan(threads, BudgetS: 8.0, OpIters: 2_000, OpRepeats: 200, WarmupS: 0.3, InplaceN: 1 << 18, InplaceIters: 250, InplaceRepeats: 60, MatmulN: 1024, MatmulRepeats: 40,
                new MlpPlan(Inputs: 128, Hidden: 256, Layers: 2, Classes: 10, Batch: 64, Steps: 20, Repeats: 40));
        var n = plan.MatmulN;
        var mlp = plan.Mlp;
        var metrics = new[]
        {
            new Metric("add_1", "a + b, 1 element (`using var`)", Unit.Micro, OverheadTarget, plan.OpIters, plan.OpRepeats),
            new Metric("add_16", "a + b, 16 elements (`using var`)", Unit.Micro, OverheadTarget, plan.OpIters, plan.OpRepeats),
            new Metric("matmul_8", "x.matmul(w), 8x8 (`using var`)", Unit.Micro, OverheadTarget, plan.OpIters, plan.OpRepeats),
            new Metric("sum_16", "x.sum(), 16 elements (`using var`)", Unit.Micro, OverheadTarget, plan.OpIters, plan.OpRepeats),
            new Metric("add_1_scope", "a + b, 1 element, one DisposeScope per call", Unit.Micro, null, plan.OpIters, plan.OpRepeats),
            // Where the per-call cost goes: a native call with no libtorch dispatch, dispatch without a new
            // tensor object, and a result left to the finalizer instead of disposed.
            new Metric("dim_1", "x.dim() (one native call, no dispatch)", Unit.Micro, null, plan.OpIters, plan.OpRepeats),
            new Metric("add_1_inplace", "a.add_(b), 1 element (dispatch, no new tensor object)", Unit.Micro, null, plan.OpIters, plan.OpRepeats),
            new Metric("add_1_undisposed", "a + b, 1 element, result not disposed (finalizer + GC)", Unit.Micro, null, plan.OpIters, plan.OpRepeats),
            new Metric("add_inplace", $"a.add_(b), {plan.InplaceN / 1024}K elements, in place", Unit.Micro, null, plan.InplaceIters, plan.InplaceRepeats, Parallel: true),
            new Metric("matmul_big", $"matmul {n}x{n} float32", Unit.GFlops, OverheadTarget, 1, plan.MatmulRepeats, Parallel: true),
            new Metric("mlp_step", $"MLP train step ({mlp.Inputs}-{string.Join("-", Enumerable.Repeat(mlp.Hidden, mlp.Layers))}-{mlp.Classes}, batch {mlp.Batch}, AdamW)",
                Unit.Milli, null, mlp.Steps, mlp.Repeats, Parallel: true),
        };

        Console.WriteLine($"bench{(quick ? " --quick" : "")}: {Environment.ProcessorCount} cores, {threads} threads, libtorch {torch.__version__}");
        var clock = Stopwatch.StartNew();
        var loadBefore = LoadAverage();
        if (loadBefore > Environment.ProcessorCount / 2.0)
            Console.WriteLine($"warning: the machine is busy (load average {loadBefore:F2} on {Environment.ProcessorCount} cores); timings will be noisy");
        string? referenceError = null;
        ReferenceProcess? reference = null;
        Console.WriteLine($"starting the reference ({Python} bench/reference.py)...");
        try { reference = ReferenceProcess.Start("reference.py", JsonSerializer.Serialize(plan, SnakeCase)); }
        catch (ReferenceUnavailableException e) { referenceError = e.Message; }
        if (referenceError is not null) Console.WriteLine($"reference unavailable: {referenceError}. Measuring ours only.");
        var referenceInfo = reference is null ? null : new ReferenceInfo(reference.TorchVersion, reference.Threads, reference.Library);

        var results = new Dictionary<string, Result>();
        // Which row is being measured, and how long the rest will take, as a line redrawn in place on a terminal.
        var progress = ConsoleProgress.ForConsole();
        try
        {
            using var workloads = new Workloads(plan);
            var rows = only is "all" or "binding" ? metrics : [];
            progress.Begin("binding row", rows.Length);
            foreach (var (index, metric) in rows.Index())
            {
                progress.Report(index, $"measuring {metric.Label}");
                var result = Measure(metric, workloads.Loop(metric.Key), plan.WarmupS, plan.BudgetS, ref reference, ref referenceError);
                results[metric.Key] = result;
                var line = $"  {metric.Label}: ours {Format(metric, result.Ours, plan)}";
                if (result.Reference is { } other)
                    line += $", reference {Format(metric, other, plan)}, ratio {result.Ours / other:F2} (paired median {result.PairedMedianRatio:F2})";
                progress.Line(line);
            }
            progress.End();
        }
        finally
        {
            reference?.Dispose();
        }
        if (referenceError is not null && referenceInfo is not null)
            Console.WriteLine($"reference failed during the run: {referenceError}");
        Console.WriteLine($"bench done in {clock.Elapsed.TotalSeconds:F1}s");

        var generation = only is not ("all" or "generation") ? "" : GenerationBench.Section(quick, threads, referenceInfo is null ? null : Python,
            Path.Combine(AppContext.BaseDirectory, "bench", "qwen2_reference.py"), progress.Line);
        var learning = only is not ("all" or "rl") ? "" : LearnerBench.Section(quick, threads, progress.Line);
        var load = (Before: loadBefore, After: LoadAverage());
        var table = Render(plan, quick, metrics, results, referenceInfo, referenceError, load) + generation + learning;
        Console.WriteLine();
        Console.WriteLine(table);
        try
        {
            File.WriteAllText(outPath, table);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: could not write {outPath}: {e.Message}");
            return 1;
        }
        Console.WriteLine($"written to {Path.GetFullPath(outPath)}");
        return 0;
    }

    /// <summary>
    /// Warms both sides up for <paramref name="warmupSeconds"/> each, then times up to <see cref="Metric.Repeats"/> blocks (adding
    /// none after <paramref name="budgetSeconds"/>, but at least <see cref="MinimumBlocks"/>) of <see cref="Metric.Count"/>
    /// iterations each, alternating ours and the reference's. The reference timing is null when it is
    /// unavailable or failed on the way.
    /// </summary>
    internal static Result Measure(Metric metric, Action<int> loop, double warmupSeconds, double budgetSeconds,
        ref ReferenceProcess? reference, ref string? referenceError)
    {
        // Warm-up: JIT tiering on our side, allocator caches and OpenMP threads on both.
        var warmupBlock = Math.Max(1, metric.Count / 10);
        var end = Stopwatch.GetTimestamp() + (long)(warmupSeconds * Stopwatch.Frequency);
        do loop(warmupBlock); while (Stopwatch.GetTimestamp() < end);
        var referenceWarmup = 0.0;
        while (reference is not null && referenceWarmup < warmupSeconds)
            referenceWarmup += Guard(ref reference, ref referenceError, r => r.Run(metric.Key, warmupBlock)) ?? 0;

        var ourBlocks = new List<double>();
        var referenceBlocks = new List<double>();
        // A busy machine can make OpenMP workloads very slow; the time budget keeps the whole run bounded.
        var budgetEnd = Stopwatch.GetTimestamp() + (long)(budgetSeconds * Stopwatch.Frequency);
        for (var r = 0; r < metric.Repeats && (r < MinimumBlocks || Stopwatch.GetTimestamp() < budgetEnd); r++)
        {
            if (metric.Parallel) Thread.Sleep(SettlePause);
            var start = Stopwatch.GetTimestamp();
            loop(metric.Count);
            ourBlocks.Add(Stopwatch.GetElapsedTime(start).TotalSeconds / metric.Count);
            if (metric.Parallel && reference is not null) Thread.Sleep(SettlePause);
            if (Guard(ref reference, ref referenceError, p => p.Run(metric.Key, metric.Count)) is { } seconds)
                referenceBlocks.Add(seconds / metric.Count);
        }
        if (referenceBlocks.Count != ourBlocks.Count) return new Result(ourBlocks.Min(), null, null, ourBlocks.Count);
        var ratios = ourBlocks.Zip(referenceBlocks, (mine, theirs) => mine / theirs).Order().ToArray();
        var median = ratios.Length % 2 == 1 ? ratios[ratios.Length / 2] : (ratios[ratios.Length / 2 - 1] + ratios[ratios.Length / 2]) / 2;
        return new Result(ourBlocks.Min(), referenceBlocks.Min(), median, ourBlocks.Count);
    }

    /// <summary>Runs one reference request; on failure records why, shuts the reference down and returns null.</summary>
    private static double? Guard(ref ReferenceProcess? reference, ref string? error, Func<ReferenceProcess, double> request)
    {
        if (reference is null) return null;
        try
        {
            return request(reference);
        }
        catch (ReferenceUnavailableException e)
        {
            error = e.Message;
            reference.Dispose();
            reference = null;
            return null;
        }
    }

    // ---- our side -------------------------------------------------------------------------------

    /// <summary>The C# loops, written the way a TorchSharp user would write them.</summary>
    private sealed class Workloads : IDisposable
    {
        private readonly List<IDisposable> owned = new();
        private readonly Dictionary<string, Action<int>> loops = new();

        public Workloads(Plan plan)
        {
            torch.manual_seed(0);
            var a1 = Keep(torch.rand(new long[] { 1 }));
            var b1 = Keep(torch.rand(new long[] { 1 }));
            var a16 = Keep(torch.rand(new long[] { 16 }));
            var b16 = Keep(torch.rand(new long[] { 16 }));
            var x8 = Keep(torch.rand(new long[] { 8, 8 }));
            var w8 = Keep(torch.rand(new long[] { 8, 8 }));
            var bigA = Keep(torch.rand(new long[] { plan.InplaceN }));
            var bigB = Keep(torch.rand(new long[] { plan.InplaceN }));
            var ma = Keep(torch.rand(new long[] { plan.MatmulN, plan.MatmulN }));
            var mb = Keep(torch.rand(new long[] { plan.MatmulN, plan.MatmulN }));

            loops["add_1"] = count => { for (var i = 0; i < count; i++) { using var r = a1.Plus(b1); } };
            loops["add_16"] = count => { for (var i = 0; i < count; i++) { using var r = a16.Plus(b16); } };
            loops["matmul_8"] = count => { for (var i = 0; i < count; i++) { using var r = x8.matmul(w8); } };
            loops["sum_16"] = count => { for (var i = 0; i < count; i++) { using var r = a16.sum(); } };
            loops["add_1_scope"] = count =>
            {
                for (var i = 0; i < count; i++)
                {
                    using var scope = torch.NewDisposeScope();
                    _ = a1.Plus(b1);
                }
            };
            loops["dim_1"] = count => { var d = 0L; for (var i = 0; i < count; i++) d += a1.dim(); GC.KeepAlive(d); };
            var accumulator = Keep(torch.zeros(new long[] { 1 }));
            loops["add_1_inplace"] = count => { for (var i = 0; i < count; i++) accumulator.add_(b1, HeldScalars.One); };
            loops["add_1_undisposed"] = count => { for (var i = 0; i < count; i++) _ = a1.Plus(b1); };
            loops["add_inplace"] = count => { for (var i = 0; i < count; i++) bigA.add_(bigB, HeldScalars.One); };
            loops["matmul_big"] = count => { for (var i = 0; i < count; i++) { using var r = ma.matmul(mb); } };

            var p = plan.Mlp;
            var model = Keep(new Mlp(p));
            var optimizer = Keep(torch.optim.AdamW(model.parameters(), lr: 1e-3, weight_decay: 1e-2));
            var inputs = Keep(torch.randn(new long[] { p.Batch, p.Inputs }));
            var targets = Keep(torch.randint(0, p.Classes, new long[] { p.Batch }));
            loops["mlp_step"] = count =>
            {
                var lastLoss = 0.0;
                for (var i = 0; i < count; i++)
                {
                    using var scope = torch.NewDisposeScope();
                    optimizer.zero_grad();
                    var loss = torch.nn.functional.cross_entropy(model.forward(inputs), targets);
                    loss.backward();
                    optimizer.step();
                    if (i == count - 1) lastLoss = loss.ItemAsDouble();
                }
                if (!double.IsFinite(lastLoss)) throw new InvalidOperationException($"MLP benchmark produced a non-finite loss ({lastLoss})");
            };
        }

        public Action<int> Loop(string key) => loops[key];

        private T Keep<T>(T item) where T : IDisposable
        {
            owned.Add(item);
            return item;
        }

        public void Dispose()
        {
            foreach (var item in owned) item.Dispose();
        }
    }

    private sealed class Mlp : nn.Module<Tensor, Tensor>
    {
        private readonly Linear[] layers;

        public Mlp(MlpPlan plan) : base(nameof(Mlp))
        {
            var sizes = new List<int> { plan.Inputs };
            sizes.AddRange(Enumerable.Repeat(plan.Hidden, plan.Layers));
            sizes.Add(plan.Classes);
            layers = new Linear[sizes.Count - 1];
            for (var i = 0; i < layers.Length; i++) register_module($"layer{i}", layers[i] = nn.Linear(sizes[i], sizes[i + 1]));
        }

        public override Tensor forward(Tensor input)
        {
            var h = input;
            for (var i = 0; i < layers.Length - 1; i++) h = layers[i].forward(h).relu();
            return layers[^1].forward(h);
        }
    }

    // ---- reference side ---------------------------------------------------------------------------

    /// <summary>The reference cannot be used (missing, failed to start, or failed on the way); the message says why.</summary>
    internal sealed class ReferenceUnavailableException(string message) : Exception(message);

    /// <summary>
    /// A reference script in bench/ (reference.py, learner_reference.py), answering one timing request per
    /// line (see the scripts' docstrings).
    /// </summary>
    internal sealed class ReferenceProcess : IDisposable
    {
        private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);
        private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(120);
        private readonly Process process;
        private readonly StringBuilder errors = new();
        private bool disposed;

        private ReferenceProcess(Process process)
        {
            this.process = process;
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (errors) errors.AppendLine(e.Data);
            };
            process.BeginErrorReadLine();
        }

        public string TorchVersion { get; private set; } = "?";

        public int Threads { get; private set; }

        public string? Library { get; private set; }

        /// <summary>Starts bench/<paramref name="scriptName"/> with <paramref name="argument"/> and reads its greeting.</summary>
        public static ReferenceProcess Start(string scriptName, string argument)
        {
            if (!File.Exists(Python)) throw new ReferenceUnavailableException($"{Python} is missing");
            var script = Path.Combine(AppContext.BaseDirectory, "bench", scriptName);
            if (!File.Exists(script)) throw new ReferenceUnavailableException($"{script} is missing (rebuild the CLI)");
            var start = new ProcessStartInfo(Python)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add(script);
            start.ArgumentList.Add(argument);
            Process process;
            try { process = Process.Start(start) ?? throw new ReferenceUnavailableException($"could not start {Python}"); }
            catch (System.ComponentModel.Win32Exception e) { throw new ReferenceUnavailableException($"could not start {Python}: {e.Message}"); }

            var reference = new ReferenceProcess(process);
            try
            {
                using var hello = reference.ReadMessage(StartTimeout);
                var root = hello.RootElement;
                reference.TorchVersion = root.GetProperty("torch_version").GetString() ?? "?";
                reference.Threads = root.GetProperty("threads").GetInt32();
                reference.Library = root.TryGetProperty("libtorch", out var lib) && lib.ValueKind == JsonValueKind.String ? lib.GetString() : null;
                return reference;
            }
            catch
            {
                reference.Dispose();
                throw;
            }
        }

        /// <summary>Wall-clock seconds the reference took for <paramref name="count"/> iterations of <paramref name="workload"/>.</summary>
        public double Run(string workload, int count)
        {
            using var reply = Request(workload, count);
            return reply.RootElement.GetProperty("seconds").GetDouble();
        }

        /// <summary>Runs <paramref name="count"/> iterations of <paramref name="workload"/> and returns the whole reply.</summary>
        public JsonDocument Request(string workload, int count)
        {
            try
            {
                process.StandardInput.WriteLine(JsonSerializer.Serialize(new { workload, count }));
                process.StandardInput.Flush();
            }
            catch (IOException e)
            {
                throw Failure($"could not send a request ({e.Message})");
            }
            return ReadMessage(RequestTimeout);
        }

        private JsonDocument ReadMessage(TimeSpan timeout)
        {
            var read = process.StandardOutput.ReadLineAsync();
            if (!read.Wait(timeout)) throw Failure($"no answer within {timeout.TotalSeconds:F0}s");
            var line = read.Result ?? throw Failure("reference.py exited early");
            try
            {
                var message = JsonDocument.Parse(line);
                if (message.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not an object");
                return message;
            }
            catch (JsonException e)
            {
                throw Failure($"unexpected output '{line}' ({e.Message})");
            }
        }

        private ReferenceUnavailableException Failure(string what)
        {
            if (!process.HasExited && !process.WaitForExit(TimeSpan.FromSeconds(2)))
                process.Kill(entireProcessTree: true);
            process.WaitForExit(); // flushes the stderr callbacks
            string stderr;
            lock (errors) stderr = errors.ToString();
            if (stderr.Contains("No module named 'torch'", StringComparison.Ordinal))
                return new ReferenceUnavailableException($"{Python} has no torch module (install python3-torch)");
            var tail = string.Join(" | ", stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(3));
            return new ReferenceUnavailableException(tail.Length == 0 ? what : $"{what}: {tail}");
        }

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            try
            {
                if (!process.HasExited)
                {
                    process.StandardInput.WriteLine("{\"quit\": true}");
                    process.StandardInput.Close();
                    if (!process.WaitForExit(TimeSpan.FromSeconds(10))) process.Kill(entireProcessTree: true);
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // Already gone.
            }
            process.Dispose();
        }
    }

    // ---- report -----------------------------------------------------------------------------------

    private static string Format(Metric metric, double seconds, Plan plan) => metric.Unit switch
    {
        Unit.Micro => $"{seconds * 1e6:F2} µs",
        Unit.Milli => $"{seconds * 1e3:F3} ms",
        _ => $"{Flops(plan) / seconds / 1e9:F1} GFLOP/s",
    };

    private static double Flops(Plan plan) => 2.0 * plan.MatmulN * plan.MatmulN * plan.MatmulN;

    private static string Render(Plan plan, bool quick, Metric[] metrics, Dictionary<string, Result> results,
        ReferenceInfo? reference, string? referenceError, (double Before, double After) load)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# onlinerl-bench bench{(quick ? " (--quick)" : "")}");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"- Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; CPU: {CpuModel()}, {Environment.ProcessorCount} cores");
        var referenceLibrary = reference is not { } info ? "" : $"; reference torch {info.TorchVersion} ({info.Library ?? "path unknown"})";
        var threadNote = reference is { } r && r.Threads != plan.Threads ? $"; REFERENCE REPORTS {r.Threads}" : "";
        var referenceSource = reference is null ? $"n/a ({referenceError})"
            : referenceError is null ? $"{Python}, bench/reference.py" : $"{Python}, bench/reference.py, FAILED during the run ({referenceError})";
        text.AppendLine(CultureInfo.InvariantCulture, $"- libtorch: {torch.__version__} (ours, {OurLibtorch() ?? "path unknown"}){referenceLibrary}");
        text.AppendLine(CultureInfo.InvariantCulture, $"- Threads: {plan.Threads} (torch.set_num_threads{(reference is null ? "" : ", the same on both sides")}{threadNote})");
        text.AppendLine(CultureInfo.InvariantCulture, $"- BLAS: {Blas()}");
        var busy = load.Before > Environment.ProcessorCount / 2.0 || load.After > Environment.ProcessorCount + 0.5;
        var busyNote = busy ? ". WARNING: other work was running; the numbers are noisy." : "";
        text.AppendLine(CultureInfo.InvariantCulture, $"- Load average (1 min): {load.Before:F2} before, {load.After:F2} after (the bench itself adds about 1){busyNote}");
        text.AppendLine(CultureInfo.InvariantCulture, $"- .NET {Environment.Version}; reference: {referenceSource}");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"- Method: after a warm-up of {plan.WarmupS:F1}s per side, timed blocks of ours and of the reference (a Python subprocess asked to time one block at a time) alternate, so a busy machine slows both alike. \"ours\" and \"reference\" are each side's fastest block (minimum time per iteration); \"ratio\" compares those; \"paired median\" is the median over block pairs of ours / the reference block right after it. Each row stops adding blocks after {plan.BudgetS:F0}s (at least {MinimumBlocks}); \"blocks\" says how many pairs it got. Per-op rows: up to {plan.OpRepeats} blocks of {plan.OpIters:N0} calls; C# disposes each result with `using var` (the scope row instead opens and closes one DisposeScope around each call), Python drops its reference. In-place add: up to {plan.InplaceRepeats} blocks of {plan.InplaceIters}. Rows that use libtorch's OpenMP threads (in-place add, matmul, MLP) pause {SettlePause.TotalMilliseconds:F0} ms before each block so the other side's spinning OpenMP threads go idle first. Matmul: up to {plan.MatmulRepeats} single calls. MLP: up to {plan.Mlp.Repeats} blocks of {plan.Mlp.Steps} steps (zero_grad to None, forward with ReLU, cross entropy, backward, AdamW; C# with one DisposeScope per step and TorchSharp's torch.optim.AdamW, Python torch.optim.AdamW with foreach=False).");
        text.AppendLine("- Ratio = our time / reference time (for GFLOP/s: reference GFLOP/s / ours), so <= 1.0 means we are as fast or faster.");
        text.AppendLine();
        if (results.Count == 0) return text.ToString(); // --only skipped the binding rows
        text.AppendLine("| metric | ours | reference | ratio | target | paired median | blocks |");
        text.AppendLine("|---|---:|---:|---:|---|---:|---:|");
        foreach (var metric in metrics)
        {
            var result = results[metric.Key];
            var ratio = result.Reference is { } other ? result.Ours / other : (double?)null;
            var referenceText = result.Reference is { } value ? Format(metric, value, plan) : "n/a";
            if (metric.Key is "add_1_scope" or "add_1_undisposed" && result.Reference is not null) referenceText += " (plain a + b)";
            var target = metric.Target switch
            {
                null => "-",
                { } goal when ratio is null => $"<= {goal:F1}",
                { } goal => $"<= {goal:F1}: {(ratio <= goal ? "met" : "MISSED")}",
            };
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {metric.Label} | {Format(metric, result.Ours, plan)} | {referenceText} | {Ratio(ratio)} | {target} | {Ratio(result.PairedMedianRatio)} | {result.Blocks} |");
        }
        return text.ToString();
    }

    private static string Ratio(double? value) => value is { } v ? v.ToString("F2", CultureInfo.InvariantCulture) : "n/a";

    private static string Blas()
    {
        try
        {
            var target = File.ResolveLinkTarget(BlasLink, returnFinalTarget: true);
            return target?.FullName ?? (File.Exists(BlasLink) ? BlasLink : $"{BlasLink} not found");
        }
        catch (IOException e)
        {
            return $"{BlasLink}: {e.Message}";
        }
    }

    /// <summary>The 1-minute load average, or NaN where /proc/loadavg cannot be read.</summary>
    private static double LoadAverage()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : double.NaN;
        }
        catch (IOException)
        {
            return double.NaN;
        }
    }

    private static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown" : line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>The libtorch_cpu this process mapped, to show both sides use the same library.</summary>
    private static string? OurLibtorch()
    {
        try
        {
            return File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length >= 6 && f[^1].Contains("libtorch_cpu", StringComparison.Ordinal)).Select(f => f[^1]).FirstOrDefault();
        }
        catch (IOException)
        {
            return null;
        }
    }
}
