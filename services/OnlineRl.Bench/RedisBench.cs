using System.Diagnostics;
using System.Globalization;
using System.Text;
using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Redis;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Weights;
using StackExchange.Redis;

namespace OnlineRl.Bench;

/// <summary>
/// `onlinerl-bench bench-redis`: starts a private redis-server (no persistence) and measures, in one run on the
/// same server and client, (a) weight publication and loading through <see cref="WeightStore"/> over
/// <see cref="RedisBlobStore"/> against raw SET/GET of the same bytes in the same chunks, and (b) Redis
/// Streams throughput of <see cref="RedisEventBus"/> with rollout-sized messages against redis-benchmark's
/// XADD and SET of the same size. Writes a markdown table.
/// </summary>
internal static class RedisBench
{
    private const double WeightTarget = 1.3;
    private const int ChunkBytes = 4 << 20;      // WeightStore's default chunk
    private const long TensorBytes = 16L << 20;  // weights are split into tensors of at most this size
    private const int Concurrency = 16;          // in-flight publishes/receives, and redis-benchmark clients

    public static async Task<int> RunAsync(Options options)
    {
        var outPath = options.String("out", "bench-redis.md");
        var quick = options.Flag("quick");
        options.RejectUnknown();
        var benchmarkTool = RedisServerProcess.FindExecutable("redis-benchmark");

        using var server = RedisServerProcess.Start(persistent: false);
        var clientOptions = RedisConnection.Options(server.Address);
        clientOptions.AllowAdmin = true; // FLUSHDB between runs: the server is the benchmark's own
        using var connection = await ConnectionMultiplexer.ConnectAsync(clientOptions);
        var db = connection.GetDatabase();
        Console.WriteLine($"redis-server on port {server.Port} (no persistence); {(quick ? "quick" : "full")} run");

        var loadBefore = LoadAverage();
        var rows = new List<string>();
        foreach (var (megabytes, repeats) in quick ? new[] { (100, 2) } : new[] { (100, 5), (1024, 3) })
            rows.AddRange(await WeightRowsAsync(db, megabytes << 20, repeats));

        var messages = quick ? 2_000 : 20_000;
        var payload = MessageCodec.Default.Encode(SampleRollout());
        rows.AddRange(await StreamRowsAsync(server, payload, messages, benchmarkTool));

        var report = new StringBuilder();
        report.AppendLine("# Redis benchmark (onlinerl-bench bench-redis)");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"- Machine: {Environment.ProcessorCount} cores, {RuntimeInfo()}; redis-server {ServerVersion(db)} on loopback, no persistence, started by the benchmark.");
        report.AppendLine(CultureInfo.InvariantCulture, $"- Load average (1 min) at start / end: {loadBefore} / {LoadAverage()} (other work on the machine shares its cores with the server and the client).");
        report.AppendLine(CultureInfo.InvariantCulture, $"- Weights: float32 tensors of at most {TensorBytes >> 20} MiB, {ChunkBytes >> 20} MiB chunks; ours = WeightStore (tensor to bytes, XXH128 checksum per chunk, SET, manifest, pointer; load: GET, verify, copy into a new tensor); reference = SET/GET of the same bytes in the same chunks through the same client, with as many commands in flight as ours (4). {(quick ? 2 : "5 (100 MiB) and 3 (1 GiB)")} runs, each ours then the reference; times are the best run, the ratio is the median over the runs of our time / the reference time (target <= {WeightTarget}).");
        report.AppendLine(CultureInfo.InvariantCulture, $"- Streams: {messages:N0} RolloutGroup messages of {payload.Length:N0} bytes (8 completions of 256 tokens: ids, log-probs, text), {Concurrency} in flight; ours = RedisEventBus publish (capacity check + XADD + wake-up PUBLISH in one script), then one group of {Concurrency} consumers receiving and acknowledging; reference = redis-benchmark with {Concurrency} clients, the same payload size. Ratio = our rate / reference rate (higher is better).");
        report.AppendLine();
        report.AppendLine("| measurement | ours | reference | ratio |");
        report.AppendLine("|---|---|---|---|");
        foreach (var row in rows) report.AppendLine(row);
        File.WriteAllText(outPath, report.ToString());
        Console.WriteLine();
        Console.WriteLine(report);
        Console.WriteLine($"written to {outPath}");
        return 0;
    }

    private static async Task<List<string>> WeightRowsAsync(IDatabase db, long totalBytes, int repeats)
    {
        var label = totalBytes >= 1L << 30 ? $"{totalBytes >> 30} GiB" : $"{totalBytes >> 20} MiB";
        Console.WriteLine($"weights {label}: making tensors");
        var tensors = new List<KeyValuePair<string, Tensor>>();
        for (long offset = 0, index = 0; offset < totalBytes; offset += TensorBytes, index++)
        {
            var floats = Math.Min(TensorBytes, totalBytes - offset) / sizeof(float);
            tensors.Add(new($"layers.{index}.weight", torch.rand([floats])));
        }
        try
        {
            var storeOptions = new WeightStoreOptions { Prefix = "bench:weights", ChunkBytes = ChunkBytes };
            var store = new WeightStore(new RedisBlobStore(db), storeOptions);
            var runs = new List<(double Publish, double Load, double Set, double Get)>();
            for (var r = 0; r < repeats; r++)
            {
                var watch = Stopwatch.StartNew();
                var manifest = await store.PublishAsync(tensors, step: r);
                var publish = watch.Elapsed.TotalSeconds;
                watch.Restart();
                var loaded = await store.LoadAsync(manifest.Version);
                var load = watch.Elapsed.TotalSeconds;
                VerifyIdentical(tensors, loaded);
                await db.ExecuteAsync("FLUSHDB"); // each side starts from an empty server

                var (set, get) = await RawSetGetAsync(db, tensors, storeOptions.ChunksInFlight);
                await db.ExecuteAsync("FLUSHDB");
                Console.WriteLine($"  repeat {r + 1}: publish {publish:F2}s load {load:F2}s; raw SET {set:F2}s GET {get:F2}s");
                runs.Add((publish, load, set, get));
            }
            return
            [
                WeightRow($"weights {label}: publish (WeightStore) vs SET", totalBytes, runs.Select(r => (r.Publish, r.Set)).ToList()),
                WeightRow($"weights {label}: load + verify (WeightStore) vs GET", totalBytes, runs.Select(r => (r.Load, r.Get)).ToList()),
                WeightRow($"weights {label}: publish + load vs SET + GET", totalBytes, runs.Select(r => (r.Publish + r.Load, r.Set + r.Get)).ToList()),
            ];
        }
        finally
        {
            foreach (var (_, tensor) in tensors) tensor.Dispose();
        }
    }

    /// <summary>
    /// SET then GET the tensors' bytes in the store's chunks with as many commands in flight as the store
    /// uses (<see cref="WeightStoreOptions.ChunksInFlight"/>); returns seconds for each phase.
    /// </summary>
    private static async Task<(double Set, double Get)> RawSetGetAsync(IDatabase db, List<KeyValuePair<string, Tensor>> tensors, int inFlight)
    {
        var sources = tensors.Select(t =>
        {
            var bytes = t.Value.bytes.ToArray(); // copied outside the timing: the reference starts from bytes
            return (t.Key, bytes);
        }).ToList();
        var chunks = sources.SelectMany(s => Enumerable.Range(0, (s.bytes.Length + ChunkBytes - 1) / ChunkBytes)
            .Select(c => ((RedisKey)$"bench:raw:{s.Key}:{c}", s.bytes.AsMemory(c * ChunkBytes, Math.Min(ChunkBytes, s.bytes.Length - c * ChunkBytes))))).ToList();

        var watch = Stopwatch.StartNew();
        var running = new Queue<Task>();
        foreach (var (key, piece) in chunks)
        {
            if (running.Count >= inFlight) await running.Dequeue();
            running.Enqueue(db.StringSetAsync(key, piece));
        }
        await Task.WhenAll(running);
        var setSeconds = watch.Elapsed.TotalSeconds;

        watch.Restart();
        long received = 0;
        var reads = new Queue<Task<RedisValue>>();
        foreach (var (key, _) in chunks)
        {
            if (reads.Count >= inFlight) received += ((byte[])(await reads.Dequeue())!).Length;
            reads.Enqueue(db.StringGetAsync(key));
        }
        while (reads.Count > 0) received += ((byte[])(await reads.Dequeue())!).Length;
        var getSeconds = watch.Elapsed.TotalSeconds;
        if (received != sources.Sum(s => (long)s.bytes.Length)) throw new InvalidOperationException("raw GET returned the wrong number of bytes");
        return (setSeconds, getSeconds);
    }

    private static void VerifyIdentical(List<KeyValuePair<string, Tensor>> expected, Dictionary<string, Tensor> actual)
    {
        try
        {
            foreach (var (name, tensor) in expected)
            {
                if (!tensor.bytes.SequenceEqual(actual[name].bytes)) throw new InvalidOperationException($"loaded '{name}' differs from the published tensor");
            }
        }
        finally
        {
            foreach (var tensor in actual.Values) tensor.Dispose();
        }
    }

    /// <summary>
    /// A row from paired runs (ours, then the reference right after): each side's best time, and the median
    /// over the pairs of our time / the reference's, which a noisy machine disturbs less than a ratio of bests.
    /// </summary>
    private static string WeightRow(string what, long bytes, List<(double Ours, double Reference)> pairs)
    {
        var ours = pairs.Min(p => p.Ours);
        var reference = pairs.Min(p => p.Reference);
        var ratios = pairs.Select(p => p.Ours / p.Reference).Order().ToList();
        var median = ratios.Count % 2 == 1 ? ratios[ratios.Count / 2] : (ratios[ratios.Count / 2 - 1] + ratios[ratios.Count / 2]) / 2;
        return string.Create(CultureInfo.InvariantCulture,
            $"| {what} | {ours:F2} s ({bytes / ours / 1e6:F0} MB/s) | {reference:F2} s ({bytes / reference / 1e6:F0} MB/s) | {median:F2} {(median <= WeightTarget ? "(target met)" : $"(target {WeightTarget} missed)")} |");
    }

    private static async Task<List<string>> StreamRowsAsync(RedisServerProcess server, byte[] payload, int messages, string? benchmarkTool)
    {
        Console.WriteLine($"streams: {messages} messages of {payload.Length} bytes");
        var (published, consumed) = await BusThroughputAsync(server, payload, messages);
        var megabytes = payload.Length / 1e6;
        double? xadd = null, set = null;
        if (benchmarkTool is not null)
        {
            // The payload as one text argument of the same size (redis-benchmark's -d applies to built-in tests only).
            xadd = RedisBenchmark(benchmarkTool, server.Port, messages, ["XADD", "bench:xadd", "MAXLEN", "~", "10000", "*", "payload", new string('x', payload.Length)]);
            set = RedisBenchmark(benchmarkTool, server.Port, messages, ["-d", payload.Length.ToString(CultureInfo.InvariantCulture), "-t", "set"]);
        }
        string Rate(double perSecond) => string.Create(CultureInfo.InvariantCulture, $"{perSecond:N0} msg/s ({perSecond * megabytes:F0} MB/s)");
        string Versus(double ours, double? reference, string name) => reference is { } r
            ? string.Create(CultureInfo.InvariantCulture, $"{name}: {Rate(r)} | {ours / r:F2} |")
            : "redis-benchmark not installed | - |";
        return
        [
            $"| streams: publish (RedisEventBus) vs XADD | {Rate(published)} | {Versus(published, xadd, "XADD")}",
            $"| streams: publish (RedisEventBus) vs SET | {Rate(published)} | {Versus(published, set, "SET")}",
            $"| streams: receive + ack, {Concurrency} consumers (RedisEventBus) vs XADD | {Rate(consumed)} | {Versus(consumed, xadd, "XADD")}",
        ];
    }

    /// <summary>Messages per second published with <see cref="Concurrency"/> in flight, then received and acknowledged by one group of as many consumers.</summary>
    private static async Task<(double Published, double Consumed)> BusThroughputAsync(RedisServerProcess server, byte[] payload, int messages)
    {
        await using var bus = new RedisEventBus(new RedisEventBusOptions { Address = server.Address, KeyPrefix = "bench", DefaultCapacity = messages + 1 });
        var headers = new Dictionary<string, string> { [MessageHeaders.SchemaVersion] = "1", [MessageHeaders.MessageType] = "onlinerl.v1.RolloutGroup" };
        await using (bus.Subscribe(Topics.Rollouts, "scorer", "scorer-0")) { } // the group exists from the start, as in a run
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < messages)
                await bus.PublishAsync(Topics.Rollouts, "prompt", payload, headers);
        })));
        var published = messages / watch.Elapsed.TotalSeconds;

        var subscriptions = Enumerable.Range(0, Concurrency).Select(c => bus.Subscribe(Topics.Rollouts, "scorer", $"scorer-{c}")).ToList();
        var consumed = 0;
        watch.Restart();
        await Task.WhenAll(subscriptions.Select(subscription => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref consumed) <= messages)
            {
                var message = await subscription.ReceiveAsync();
                if (message.Payload.Length != payload.Length) throw new InvalidOperationException("a message came back with another size");
                await subscription.AckAsync(message);
            }
        })));
        var consumedRate = messages / watch.Elapsed.TotalSeconds;
        foreach (var subscription in subscriptions) await subscription.DisposeAsync();
        if (await bus.TrimAsync(Topics.Rollouts) != 0) throw new InvalidOperationException("acknowledged messages remain in the stream");
        return (published, consumedRate);
    }

    /// <summary>Requests per second that redis-benchmark reports (its --csv output) for one test.</summary>
    private static double RedisBenchmark(string tool, int port, int requests, IEnumerable<string> test)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-n", requests.ToString(CultureInfo.InvariantCulture),
                     "-c", Concurrency.ToString(CultureInfo.InvariantCulture), "--csv" }.Concat(test))
            info.ArgumentList.Add(argument);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {tool}");
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        // CSV: a header line, then "test","rps",...
        var line = output.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith('"') && !l.StartsWith("\"test\"", StringComparison.Ordinal))
                   ?? throw new InvalidOperationException($"redis-benchmark printed no result: {output} {stderr.Result}");
        return double.Parse(line.Split(',')[1].Trim('"'), CultureInfo.InvariantCulture);
    }

    /// <summary>A rollout as a generator sends it: a GSM8K-like prompt and 8 completions of 256 tokens.</summary>
    private static RolloutGroup SampleRollout()
    {
        var random = new Random(1);
        var promptText = string.Concat(Enumerable.Repeat("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. ", 4));
        var rollout = new RolloutGroup
        {
            Prompt = new PromptMessage
            {
                PromptId = "gsm8k-train-17",
                Text = promptText,
                TokenIds = { Enumerable.Range(0, 100).Select(_ => random.Next(50_000)) },
                Metadata = { ["task"] = "gsm8k", ["answer"] = "72" },
                Dataset = "gsm8k",
                DatasetIndex = 17,
            }.Stamp("bench-run"),
            PolicyVersion = 12,
            GeneratorId = "generator-0",
            Sampling = new SamplingParams { Temperature = 1f, TopK = 50, TopP = 0.95f, MaxNewTokens = 256, Seed = 42 },
            Timings = new RolloutTimings { QueueMs = 3.5, GenerateMs = 812.25 },
        };
        for (var c = 0; c < 8; c++)
        {
            rollout.Completions.Add(new Completion
            {
                TokenIds = { Enumerable.Range(0, 256).Select(_ => random.Next(50_000)) },
                Logprobs = { Enumerable.Range(0, 256).Select(_ => -(float)random.NextDouble() * 4) },
                Text = string.Concat(Enumerable.Range(0, 256).Select(_ => (char)('a' + random.Next(26)))),
                FinishReason = FinishReason.Length,
            });
        }
        return rollout.Stamp("bench-run");
    }

    private static string ServerVersion(IDatabase db) =>
        ((string)db.Execute("INFO", "server")!).Split('\n').FirstOrDefault(l => l.StartsWith("redis_version:", StringComparison.Ordinal))?.Trim()["redis_version:".Length..] ?? "?";

    private static string RuntimeInfo() => $".NET {Environment.Version}";

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
