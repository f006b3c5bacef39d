using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Messaging.Kafka;

namespace OnlineRl.Bench;

/// <summary>
/// `onlinerl-bench bench-kafka`: rollout-sized messages through <see cref="KafkaEventBus"/> (publish, receive, ack)
/// against a raw Confluent.Kafka producer and consumer with the same settings (idempotent, acks=all, manual
/// commit) and the same bytes and headers, on one in-process mock Kafka cluster, in one run. Rounds alternate
/// ours and raw; each round publishes a batch while a consumer drains it, and the table reports the median
/// round's publish throughput (until the brokers acknowledged every message) and end-to-end throughput (until
/// the consumer had every message).
/// </summary>
internal static class KafkaBench
{
    private const int Partitions = 4;

    /// <summary>The mock keeps about 5 MB per partition and drops older data: a batch stays well below.</summary>
    private const long BatchBytesPerPartition = 3L * 1024 * 1024;

    /// <summary>How long a fetch may wait on the broker for data, on both sides. The mock broker holds a fetch
    /// that finds no data for the whole wait (librdkafka's default, 500 ms) even when data arrives meanwhile
    /// (a real broker answers at once), so with the default each side's end-to-end time was decided by where its
    /// pending fetch stood in that cycle when the round began (measured: every message of a round arriving in one
    /// burst up to 400 ms after the last publish), not by the client.</summary>
    private const int FetchWaitMaxMs = 10;

    private sealed record Round(double PublishSeconds, double EndToEndSeconds);

    public static async Task<int> RunAsync(Options options)
    {
        var outPath = options.String("out", "bench-kafka.md");
        var quick = options.Flag("quick");
        var completions = options.Int("completions", 8);
        var tokens = options.Int("tokens", 256);
        options.RejectUnknown();
        if (completions < 1 || tokens < 1) throw new UsageException("--completions and --tokens must be at least 1");
        var rounds = quick ? 3 : 9;

        var rollout = SampleRollout(completions, tokens);
        var payload = MessageCodec.Default.Encode(rollout);
        var headers = new Dictionary<string, string>
        {
            [MessageHeaders.SchemaVersion] = SchemaVersions.Current.ToString(CultureInfo.InvariantCulture),
            [MessageHeaders.MessageType] = RolloutGroup.Descriptor.FullName,
            [MessageHeaders.RunId] = rollout.RunId,
            [MessageHeaders.MessageId] = rollout.MessageId,
        };
        var batch = (int)Math.Min(quick ? 500 : 2000, BatchBytesPerPartition * Partitions / payload.Length);
        Console.WriteLine($"rollout message: {payload.Length:N0} bytes ({completions} completions x {tokens} tokens); "
            + $"{rounds} rounds of {batch} messages per side, {Partitions} partitions, librdkafka {Library.VersionString}");

        using var cluster = new MockKafkaCluster(brokers: 1, initialRebalanceDelay: TimeSpan.Zero);
        const string oursTopic = "bench-ours", rawTopic = "bench-raw";
        cluster.CreateTopic(oursTopic, Partitions);
        cluster.CreateTopic(rawTopic, Partitions);

        await using var bus = new KafkaEventBus(new KafkaEventBusOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            Settings = new Dictionary<string, string> { ["fetch.wait.max.ms"] = FetchWaitMaxMs.ToString(CultureInfo.InvariantCulture) },
        });
        await using var subscription = bus.Subscribe(oursTopic, "bench-ours", "bench-0");
        using var producer = new ProducerBuilder<string, byte[]>(new ProducerConfig
        {
            BootstrapServers = cluster.BootstrapServers, EnableIdempotence = true, Acks = Acks.All,
        }).Build();
        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers, GroupId = "bench-raw", EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest, FetchWaitMaxMs = FetchWaitMaxMs,
        }).Build();
        consumer.Subscribe(rawTopic);
        var kafkaHeaders = new Headers();
        foreach (var (name, value) in headers) kafkaHeaders.Add(name, Encoding.UTF8.GetBytes(value));

        // A first round each (excluded) joins the groups and warms up connections and the JIT.
        await OursRound(bus, subscription, oursTopic, payload, headers, batch);
        await RawRound(producer, consumer, rawTopic, payload, kafkaHeaders, batch);
        var ours = new List<Round>();
        var raw = new List<Round>();
        for (var r = 0; r < rounds; r++)
        {
            ours.Add(await OursRound(bus, subscription, oursTopic, payload, headers, batch));
            raw.Add(await RawRound(producer, consumer, rawTopic, payload, kafkaHeaders, batch));
            Console.WriteLine($"round {r + 1}/{rounds}: ours {ours[^1].EndToEndSeconds * 1000:F0} ms, raw {raw[^1].EndToEndSeconds * 1000:F0} ms end to end");
        }
        consumer.Close();

        var table = Table(payload.Length, batch, rounds, ours, raw);
        Console.WriteLine();
        Console.WriteLine(table);
        File.WriteAllText(outPath, table);
        Console.WriteLine($"wrote {outPath}");
        return 0;
    }

    private static async Task<Round> OursRound(KafkaEventBus bus, IEventSubscription subscription, string topic, byte[] payload,
        IReadOnlyDictionary<string, string> headers, int batch)
    {
        var clock = Stopwatch.StartNew();
        var consumed = Task.Run(async () =>
        {
            for (var i = 0; i < batch; i++)
            {
                var message = await subscription.ReceiveAsync();
                await subscription.AckAsync(message);
            }
        });
        var published = new Task<string>[batch];
        for (var i = 0; i < batch; i++)
            published[i] = bus.PublishAsync(topic, $"prompt-{i}", payload, headers).AsTask();
        await Task.WhenAll(published);
        var publishSeconds = clock.Elapsed.TotalSeconds;
        await consumed;
        return new Round(publishSeconds, clock.Elapsed.TotalSeconds);
    }

    private static async Task<Round> RawRound(IProducer<string, byte[]> producer, IConsumer<string, byte[]> consumer, string topic,
        byte[] payload, Headers headers, int batch)
    {
        var clock = Stopwatch.StartNew();
        var consumed = Task.Factory.StartNew(() =>
        {
            var count = 0;
            while (count < batch)
                if (consumer.Consume(TimeSpan.FromSeconds(1)) is { Message: not null }) count++;
            consumer.Commit();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        for (var i = 0; i < batch; i++)
        {
            var message = new Message<string, byte[]> { Key = $"prompt-{i}", Value = payload, Headers = headers };
            while (true)
            {
                try
                {
                    producer.Produce(topic, message);
                    break;
                }
                catch (ProduceException<string, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(5));
                }
            }
        }
        producer.Flush();
        var publishSeconds = clock.Elapsed.TotalSeconds;
        await consumed;
        return new Round(publishSeconds, clock.Elapsed.TotalSeconds);
    }

    /// <summary>A rollout group as a generator writes it: a prompt and completions with token ids and log-probs.</summary>
    private static RolloutGroup SampleRollout(int completions, int tokens)
    {
        var random = new Random(1234);
        var prompt = new PromptMessage
        {
            SchemaVersion = SchemaVersions.Current, RunId = "bench-run", MessageId = "prompt-0",
            CreatedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), PromptId = "gsm8k-train-17",
            Text = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell altogether?",
            Dataset = "gsm8k", DatasetIndex = 17,
        };
        for (var t = 0; t < 48; t++) prompt.TokenIds.Add(random.Next(151_000));
        var rollout = new RolloutGroup
        {
            SchemaVersion = SchemaVersions.Current, RunId = "bench-run", MessageId = "rollout-0",
            CreatedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Prompt = prompt, PolicyVersion = 42,
            GeneratorId = "generator-0",
            Sampling = new SamplingParams { Temperature = 1f, TopK = 50, TopP = 0.95f, MaxNewTokens = tokens, Seed = 7 },
            Timings = new RolloutTimings { QueueMs = 3.5, GenerateMs = 812.25 },
        };
        for (var c = 0; c < completions; c++)
        {
            var completion = new Completion { FinishReason = FinishReason.Stop };
            var text = new StringBuilder();
            for (var t = 0; t < tokens; t++)
            {
                completion.TokenIds.Add(random.Next(151_000));
                completion.Logprobs.Add(-(float)random.NextDouble() * 4);
                text.Append((char)('a' + random.Next(26)));
                if (t % 5 == 4) text.Append(' ');
            }
            completion.Text = text.ToString();
            rollout.Completions.Add(completion);
        }
        return rollout;
    }

    private static string Table(int messageBytes, int batch, int rounds, List<Round> ours, List<Round> raw)
    {
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        string Row(string name, double publishSeconds, double endToEndSeconds)
        {
            var megabytes = (double)messageBytes * batch / 1e6;
            return string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {batch / publishSeconds:N0} | {megabytes / publishSeconds:F1} | {batch / endToEndSeconds:N0} | {megabytes / endToEndSeconds:F1} |");
        }
        var oursPublish = Median(ours.Select(r => r.PublishSeconds));
        var oursEnd = Median(ours.Select(r => r.EndToEndSeconds));
        var rawPublish = Median(raw.Select(r => r.PublishSeconds));
        var rawEnd = Median(raw.Select(r => r.EndToEndSeconds));
        var text = new StringBuilder();
        text.AppendLine("# Kafka transport benchmark");
        text.AppendLine();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"One run on this machine ({Environment.ProcessorCount} cores), librdkafka {Library.VersionString} mock cluster (1 broker, {Partitions} partitions) in the same process. Message: a RolloutGroup protobuf of {messageBytes:N0} bytes with 4 headers. {rounds} rounds of {batch} messages per side, alternating; each round publishes the batch (all in flight at once) while one consumer drains it; medians over the rounds."));
        text.AppendLine();
        text.AppendLine("| path | publish msg/s | publish MB/s | end-to-end msg/s | end-to-end MB/s |");
        text.AppendLine("|---|---:|---:|---:|---:|");
        text.AppendLine(Row("KafkaEventBus (PublishAsync; ReceiveAsync + AckAsync, commits of the acked prefix)", oursPublish, oursEnd));
        text.AppendLine(Row("raw Confluent.Kafka (Produce + Flush; Consume, one Commit per batch)", rawPublish, rawEnd));
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"| ratio ours / raw (throughput) | {rawPublish / oursPublish:F2} | {rawPublish / oursPublish:F2} | {rawEnd / oursEnd:F2} | {rawEnd / oursEnd:F2} |"));
        text.AppendLine();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Both sides: idempotent producer with acks=all, offsets committed only as the consumer asks, fetch.wait.max.ms={FetchWaitMaxMs} (the mock broker does not answer a waiting fetch when data arrives), the same bytes, keys and headers."));
        return text.ToString();
    }
}
