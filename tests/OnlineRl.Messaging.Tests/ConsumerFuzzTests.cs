using System.Diagnostics.Metrics;
using Google.Protobuf;

namespace OnlineRl.Messaging.Tests;

/// <summary>
/// Bad messages through a real <see cref="Consumer{T}"/> on the in-process bus: each goes to the dead-letter topic
/// exactly once with its reason, is counted under that reason, and the consumer keeps handling the good ones.
/// </summary>
public class ConsumerFuzzTests
{
    private const int MaxPayloadBytes = 4096;
    private static readonly MessageCodec Codec = new(new MessageCodecOptions { MaxPayloadBytes = MaxPayloadBytes });

    /// <summary>Sums the dead-letter counter of one <see cref="MessagingMetrics"/> by reason.</summary>
    private sealed class DeadLetterCounts : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, long> _byReason = new();

        public DeadLetterCounts(MessagingMetrics metrics)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, metrics.Meter) && instrument.Name == "onlinerl.messaging.dead_letters")
                    l.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                    if (tag.Key == "reason")
                        lock (_byReason) _byReason[(string)tag.Value!] = _byReason.GetValueOrDefault((string)tag.Value!) + value;
            });
            _listener.Start();
        }

        public Dictionary<string, long> ByReason()
        {
            lock (_byReason) return new Dictionary<string, long>(_byReason);
        }

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>
    /// Publishes the payloads (key = their index) then a valid sentinel, runs a consumer until it has handled the
    /// sentinel (one consumer reads in order, so everything before it is done), and returns the keys it handled
    /// and the dead letters it wrote.
    /// </summary>
    private static async Task<(List<string> Handled, List<DeadLetter> Letters)> Consume(InProcessEventBus bus, MessagingMetrics metrics,
        IReadOnlyList<byte[]> payloads)
    {
        for (var i = 0; i < payloads.Count; i++)
            await bus.PublishAsync(Topics.Rollouts, $"m{i}", payloads[i]).Guarded();
        const string sentinel = "sentinel";
        await bus.PublishAsync(Topics.Rollouts, sentinel, Codec.Encode(Samples.Rollout())).Guarded();

        var handled = new List<string>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var consumer = new Consumer<RolloutGroup>(bus, Topics.Rollouts, "scorers", "scorer-0",
            new ConsumerOptions { Codec = Codec, ServiceId = "scorer-0" }, metrics);
        var run = consumer.RunAsync((_, raw, _) =>
        {
            if (raw.Key == sentinel) done.TrySetResult();
            else handled.Add(raw.Key);
            return ValueTask.CompletedTask;
        }, stop.Token);
        await Task.WhenAny(done.Task, run).WaitAsync(TimeSpan.FromSeconds(60));
        if (run.IsFaulted) await run; // the loop must never die on bad input
        Assert.True(done.Task.IsCompleted, "the consumer did not reach the sentinel");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run).Guarded();
        Assert.Equal(0, bus.Lag(Topics.Rollouts, "scorers"));

        var letters = new List<DeadLetter>();
        await using var inspector = bus.Subscribe(Topics.DeadLetter, "inspector", "inspector-0");
        while (bus.Lag(Topics.DeadLetter, "inspector") > 0)
        {
            var m = await inspector.ReceiveAsync().Guarded();
            var letter = Codec.Decode<DeadLetter>(m.Payload.Span);
            Assert.True(letter.Ok, letter.Error);
            letters.Add(letter.Value);
            await inspector.AckAsync(m).Guarded();
        }
        return (handled, letters);
    }

    [Fact]
    public async Task Malformed_truncated_oversized_and_newer_schema_messages_each_get_their_own_reason_and_the_good_ones_are_handled()
    {
        using var metrics = new MessagingMetrics();
        using var counts = new DeadLetterCounts(metrics);
        await using var bus = new InProcessEventBus();
        var valid = Codec.Encode(Samples.Rollout());
        var newer = Samples.Rollout();
        newer.SchemaVersion = SchemaVersions.Current + 1;
        var big = Samples.Rollout();
        big.Prompt.Text = new string('x', MaxPayloadBytes);
        byte[][] payloads =
        [
            [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02], // a length no message within the limit has
            valid,
            valid[..^3],                                        // cut inside the last field
            valid,
            big.ToByteArray(),
            valid,
            newer.ToByteArray(),
            valid,
        ];

        var (handled, letters) = await Consume(bus, metrics, payloads);

        Assert.Equal(["m1", "m3", "m5", "m7"], handled);
        var reasons = letters.ToDictionary(l => l.Key, l => l.Reason);
        Assert.Equal(4, letters.Count);
        Assert.StartsWith("payload: not a valid onlinerl.v1.RolloutGroup", reasons["m0"], StringComparison.Ordinal);
        Assert.StartsWith("payload: truncated onlinerl.v1.RolloutGroup: field ", reasons["m2"], StringComparison.Ordinal);
        Assert.StartsWith($"payload: {payloads[4].Length} bytes exceeds the limit of {MaxPayloadBytes} bytes", reasons["m4"], StringComparison.Ordinal);
        Assert.Equal($"schema_version: {SchemaVersions.Current + 1} is newer than the newest supported version {SchemaVersions.Current}", reasons["m6"]);
        Assert.Equal(new Dictionary<string, long>
        {
            [DeadLetterReasons.Malformed] = 1,
            [DeadLetterReasons.Truncated] = 1,
            [DeadLetterReasons.Oversized] = 1,
            [DeadLetterReasons.UnsupportedSchemaVersion] = 1,
        }, counts.ByReason());
    }

    [Fact]
    public async Task Thousands_of_random_and_mutated_messages_give_one_dead_letter_per_bad_message_and_every_good_one_is_handled()
    {
        const int count = 3000;
        var rng = new Random(20260311);
        var others = Samples.All().Select(m => MessageCodec.Default.Encode(m)).ToArray();
        var payloads = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var rollout = Samples.Rollout(); // a fresh message id each time
            payloads.Add((i % 5) switch
            {
                0 => Codec.Encode(rollout),
                1 or 2 => CodecFuzzTests.Mutate(rng, Codec.Encode(rollout), others[rng.Next(others.Length)]),
                3 => RandomBytes(rng, rng.Next(0, 512)),
                _ => rng.Next(4) switch
                {
                    0 => RandomBytes(rng, MaxPayloadBytes + rng.Next(1, 2000)),
                    1 => WithSchemaVersion(rollout, (uint)rng.Next((int)SchemaVersions.Current + 1, 1000)),
                    2 => WithSchemaVersion(rollout, 0),
                    _ => Codec.Encode(rollout),
                },
            });
        }

        // The oracle: protobuf's own parser, the contract rules and the size limit, independent of the consumer.
        var good = new HashSet<string>();
        var badReasons = new Dictionary<string, long>();
        for (var i = 0; i < count; i++)
        {
            if (Acceptable(payloads[i])) good.Add($"m{i}");
            else
            {
                var reason = DeadLetterReasons.Of(Codec.Decode<RolloutGroup>(payloads[i]).ErrorKind);
                badReasons[reason] = badReasons.GetValueOrDefault(reason) + 1;
            }
        }
        var badCount = count - good.Count;
        Assert.True(good.Count > count / 5 && badCount > count / 2, $"{good.Count} good, {badCount} bad: the mix is not a test");

        using var metrics = new MessagingMetrics();
        using var counts = new DeadLetterCounts(metrics);
        await using var bus = new InProcessEventBus();
        var (handled, letters) = await Consume(bus, metrics, payloads);

        Assert.Equal(good.Count, handled.Count); // each good message handled once
        Assert.True(good.SetEquals(handled));
        Assert.Equal(badCount, letters.Count);   // exactly one dead letter per bad message
        var lettered = letters.Select(l => l.Key).ToHashSet();
        Assert.Equal(badCount, lettered.Count);
        Assert.Empty(lettered.Intersect(good));
        foreach (var letter in letters)
        {
            var original = payloads[int.Parse(letter.Key[1..], System.Globalization.CultureInfo.InvariantCulture)];
            Assert.Contains(':', letter.Reason);
            Assert.Equal(original.AsSpan(0, letter.Payload.Length).ToArray(), letter.Payload.ToByteArray());
        }
        Assert.Equal(badReasons, counts.ByReason());
        foreach (var reason in new[] { DeadLetterReasons.Malformed, DeadLetterReasons.Truncated, DeadLetterReasons.Oversized,
                     DeadLetterReasons.UnsupportedSchemaVersion, DeadLetterReasons.Invalid })
            Assert.True(badReasons.GetValueOrDefault(reason) > 0, $"the fuzz mix produced no '{reason}' message");
    }

    private static bool Acceptable(byte[] payload)
    {
        if (payload.Length > MaxPayloadBytes) return false;
        try
        {
            return MessageCodec.Validate(RolloutGroup.Parser.ParseFrom(payload)) is null;
        }
        catch (InvalidProtocolBufferException)
        {
            return false;
        }
    }

    private static byte[] RandomBytes(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }

    private static byte[] WithSchemaVersion(RolloutGroup rollout, uint version)
    {
        rollout.SchemaVersion = version;
        return rollout.ToByteArray();
    }
}
