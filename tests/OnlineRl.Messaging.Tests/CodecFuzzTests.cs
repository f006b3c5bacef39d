using Google.Protobuf;

namespace OnlineRl.Messaging.Tests;

/// <summary>
/// Thousands of random and mutated payloads through the decoder of every type: no exception escapes,
/// every payload protobuf cannot parse or that breaks a rule is rejected with a reason, and every
/// accepted payload is a valid message.
/// </summary>
public class CodecFuzzTests
{
    private const int RandomInputs = 2000;
    private const int MutationsPerSample = 600;

    [Fact]
    public void Random_bytes_never_throw_and_are_rejected_with_a_reason()
    {
        var rng = new Random(20261122);
        var rejected = 0;
        for (var i = 0; i < RandomInputs; i++)
        {
            var bytes = new byte[rng.Next(0, 256)];
            rng.NextBytes(bytes);
            foreach (var type in Samples.MessageTypes)
                if (!CheckOne(type, bytes)) rejected++;
        }
        // Random bytes are almost never a valid message (all required fields set and in range).
        Assert.True(rejected >= RandomInputs * Samples.MessageTypes.Length - 5, $"only {rejected} rejected");
    }

    [Fact]
    public void Mutated_valid_messages_never_throw_and_bad_ones_are_rejected_with_a_reason()
    {
        var rng = new Random(17);
        var samples = Samples.All().Select(m => (m.GetType(), MessageCodec.Default.Encode(m))).ToArray();
        int total = 0, rejected = 0;
        foreach (var (type, valid) in samples)
        {
            for (var i = 0; i < MutationsPerSample; i++)
            {
                var other = samples[rng.Next(samples.Length)].Item2;
                var mutated = Mutate(rng, valid, other);
                // Decode as the sample's own type and as every other type (type confusion).
                foreach (var target in Samples.MessageTypes)
                {
                    total++;
                    if (!CheckOne(target, mutated)) rejected++;
                }
                Assert.True(CheckOne(type, valid));
            }
        }
        // The mutations are mostly harmful; the test must not pass by accepting everything.
        Assert.True(rejected > total / 2, $"{rejected} of {total} rejected");
    }

    /// <summary>Decodes and checks the result against an independent oracle; returns whether it was accepted.</summary>
    private static bool CheckOne(Type type, byte[] bytes)
    {
        (bool Ok, IContractMessage? Value, string? Error, DecodeErrorKind Kind) result;
        try
        {
            result = Samples.DecodeAs(type, bytes);
        }
        catch (Exception ex)
        {
            Assert.Fail($"Decode<{type.Name}> threw {ex.GetType().Name}: {ex.Message} on [{Convert.ToHexString(bytes)}]");
            throw;
        }

        // Oracle: parse with the raw protobuf parser, then validate.
        string? expectedProblem;
        try
        {
            var parser = (MessageParser)type.GetProperty("Parser")!.GetValue(null)!;
            expectedProblem = MessageCodec.Validate((IContractMessage)parser.ParseFrom(bytes));
        }
        catch (InvalidProtocolBufferException)
        {
            expectedProblem = "malformed";
            Assert.Contains(result.Kind, new[] { DecodeErrorKind.Malformed, DecodeErrorKind.Truncated });
        }

        if (result.Ok)
        {
            Assert.Null(expectedProblem);
            Assert.NotNull(result.Value);
            Assert.Null(result.Error);
            Assert.Null(MessageCodec.Validate(result.Value));
            // An accepted message can be re-encoded (so a service can forward it).
            _ = MessageCodec.Default.Encode(result.Value);
            return true;
        }
        Assert.NotNull(expectedProblem);
        Assert.Null(result.Value);
        Assert.False(string.IsNullOrWhiteSpace(result.Error));
        Assert.NotEqual(DecodeErrorKind.None, result.Kind);
        Assert.Contains(':', result.Error); // "field: problem"
        return false;
    }

    /// <summary>One to three random edits of <paramref name="valid"/>: bit flips, cuts, junk, duplicated chunks, a splice with <paramref name="other"/>.</summary>
    internal static byte[] Mutate(Random rng, byte[] valid, byte[] other)
    {
        var b = valid.ToList();
        var edits = rng.Next(1, 4);
        for (var e = 0; e < edits && b.Count > 0; e++)
        {
            switch (rng.Next(8))
            {
                case 0: // flip one bit
                    var i = rng.Next(b.Count);
                    b[i] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1: // random byte
                    b[rng.Next(b.Count)] = (byte)rng.Next(256);
                    break;
                case 2: // truncate
                    b = b.Take(rng.Next(b.Count)).ToList();
                    break;
                case 3: // delete a range
                    var s = rng.Next(b.Count);
                    b.RemoveRange(s, rng.Next(0, Math.Min(16, b.Count - s) + 1));
                    break;
                case 4: // insert random bytes
                    var junk = new byte[rng.Next(1, 8)];
                    rng.NextBytes(junk);
                    b.InsertRange(rng.Next(b.Count + 1), junk);
                    break;
                case 5: // duplicate a chunk
                    var cs = rng.Next(b.Count);
                    var chunk = b.Skip(cs).Take(rng.Next(1, 32)).ToArray();
                    b.InsertRange(rng.Next(b.Count + 1), chunk);
                    break;
                case 6: // splice with another message
                    var cut = rng.Next(b.Count + 1);
                    b = b.Take(cut).Concat(other.Skip(rng.Next(other.Length + 1))).ToList();
                    break;
                default: // extreme varint / length bytes
                    b[rng.Next(b.Count)] = rng.Next(2) == 0 ? (byte)0xff : (byte)0x80;
                    break;
            }
        }
        return [.. b];
    }
}
