using Google.Protobuf;

namespace OnlineRl.Messaging.Tests;

public class CodecTests
{
    private static readonly MessageCodec Codec = MessageCodec.Default;

    public static TheoryData<int> SampleIndexes() => [0, 1, 2, 3, 4, 5];

    [Theory]
    [MemberData(nameof(SampleIndexes))]
    public void Every_message_type_round_trips(int index)
    {
        var original = Samples.All()[index];
        var bytes = Codec.Encode(original);
        var (ok, value, error, kind) = Samples.DecodeAs(original.GetType(), bytes);
        Assert.True(ok, error);
        Assert.Equal(DecodeErrorKind.None, kind);
        Assert.Equal(original, value);
        Assert.Equal(SchemaVersions.Current, value!.SchemaVersion);
        Assert.Equal(bytes, Codec.Encode(value));
    }

    [Fact]
    public void Round_trip_keeps_every_field_of_a_scored_group()
    {
        var original = Samples.Scored();
        var decoded = Codec.Decode<ScoredGroup>(Codec.Encode(original));
        Assert.True(decoded.Ok, decoded.Error);
        var s = decoded.Value;
        Assert.Equal("72", s.Rollout.Prompt.Metadata["answer"]);
        Assert.Equal([45, 3000, 17, 50256], s.Rollout.Prompt.TokenIds);
        Assert.Equal([-0.5f, -1.25f, -0.01f], s.Rollout.Completions[0].Logprobs);
        Assert.Equal(FinishReason.Length, s.Rollout.Completions[1].FinishReason);
        Assert.Equal(1234567890123UL, s.Rollout.Sampling.Seed);
        Assert.Equal(840.25, s.Rollout.Timings.GenerateMs);
        Assert.Equal([0.5f, -0.5f], s.RewardComponents["format"].Values);
        Assert.Equal("gsm8k-exact-match@1", s.ScorerVersion);
        Assert.Equal(original.MessageId, s.MessageId);
        Assert.NotEqual(s.MessageId, s.Rollout.MessageId);
    }

    [Fact]
    public void Stamp_fills_the_envelope_and_keeps_an_existing_id()
    {
        var time = new FixedTime(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123));
        var m = new PromptMessage { PromptId = "p", Text = "t" }.Stamp("run-x", time);
        Assert.Equal(SchemaVersions.Current, m.SchemaVersion);
        Assert.Equal("run-x", m.RunId);
        Assert.Equal(1_700_000_000_123, m.CreatedAtUnixMs);
        Assert.Equal(32, m.MessageId.Length);
        var id = m.MessageId;
        Assert.Equal(id, m.Stamp("run-x").MessageId);
        Assert.NotEqual(id, new PromptMessage { PromptId = "p", Text = "t" }.Stamp("run-x", time).MessageId);
    }

    // Each case: a valid sample broken in one way, and the text the reason must contain (naming the field).
    private static readonly Dictionary<string, (Func<IContractMessage> Build, string Expected, DecodeErrorKind Kind)> Cases = new()
    {
        ["schema_version missing"] = (() => With(Samples.Prompt(), m => m.SchemaVersion = 0), "schema_version: missing", DecodeErrorKind.UnsupportedSchemaVersion),
        ["schema_version too new"] = (() => With(Samples.Rollout(), m => m.SchemaVersion = 2), "schema_version: 2 is newer", DecodeErrorKind.UnsupportedSchemaVersion),
        ["run_id empty"] = (() => With(Samples.Prompt(), m => m.RunId = ""), "run_id: empty", DecodeErrorKind.Invalid),
        ["message_id empty"] = (() => With(Samples.Scored(), m => m.MessageId = ""), "message_id: empty", DecodeErrorKind.Invalid),
        ["created_at zero"] = (() => With(Samples.PolicyInline(), m => m.CreatedAtUnixMs = 0), "created_at_unix_ms", DecodeErrorKind.Invalid),
        ["prompt_id empty"] = (() => With(Samples.Prompt(), m => m.PromptId = ""), "prompt_id: empty", DecodeErrorKind.Invalid),
        ["prompt without text or tokens"] = (() => With(Samples.Prompt(), m => { m.Text = ""; m.TokenIds.Clear(); }), "text: empty and token_ids empty", DecodeErrorKind.Invalid),
        ["negative prompt token"] = (() => With(Samples.Prompt(), m => m.TokenIds[1] = -3), "token_ids[1]: token id -3", DecodeErrorKind.Invalid),
        ["negative dataset_index"] = (() => With(Samples.Prompt(), m => m.DatasetIndex = -1), "dataset_index", DecodeErrorKind.Invalid),
        ["empty metadata key"] = (() => With(Samples.Prompt(), m => m.Metadata[""] = "x"), "metadata: empty key", DecodeErrorKind.Invalid),
        ["rollout without prompt"] = (() => With(Samples.Rollout(), m => m.Prompt = null), "prompt: missing", DecodeErrorKind.Invalid),
        ["rollout prompt invalid"] = (() => With(Samples.Rollout(), m => m.Prompt.PromptId = ""), "prompt.prompt_id: empty", DecodeErrorKind.Invalid),
        ["rollout prompt too new"] = (() => With(Samples.Rollout(), m => m.Prompt.SchemaVersion = 7), "prompt.schema_version: 7", DecodeErrorKind.UnsupportedSchemaVersion),
        ["no completions"] = (() => With(Samples.Rollout(), m => m.Completions.Clear()), "completions: empty", DecodeErrorKind.Invalid),
        ["completion without tokens"] = (() => With(Samples.Rollout(), m => { m.Completions[1].TokenIds.Clear(); m.Completions[1].Logprobs.Clear(); }), "completions[1].token_ids: empty", DecodeErrorKind.Invalid),
        ["negative completion token"] = (() => With(Samples.Rollout(), m => m.Completions[0].TokenIds[2] = -1), "completions[0].token_ids[2]", DecodeErrorKind.Invalid),
        ["logprobs count"] = (() => With(Samples.Rollout(), m => m.Completions[0].Logprobs.RemoveAt(0)), "completions[0].logprobs: 2 values for 3 tokens", DecodeErrorKind.Invalid),
        ["logprob NaN"] = (() => With(Samples.Rollout(), m => m.Completions[1].Logprobs[1] = float.NaN), "completions[1].logprobs[1]: NaN is not finite", DecodeErrorKind.Invalid),
        ["logprob infinite"] = (() => With(Samples.Rollout(), m => m.Completions[0].Logprobs[0] = float.NegativeInfinity), "completions[0].logprobs[0]", DecodeErrorKind.Invalid),
        ["token versions count"] = (() => With(Samples.Rollout(), m => m.Completions[0].TokenPolicyVersions.RemoveAt(2)), "completions[0].token_policy_versions: 2 values for 3 tokens", DecodeErrorKind.Invalid),
        ["token version below the group's"] = (() => With(Samples.Rollout(), m => m.Completions[0].TokenPolicyVersions[0] = 2), "token_policy_versions[0]: 2 is below the group's policy_version 3", DecodeErrorKind.Invalid),
        ["token versions going back"] = (() => With(Samples.Rollout(), m => m.Completions[0].TokenPolicyVersions[1] = 5), "token_policy_versions[2]: 4 after 5", DecodeErrorKind.Invalid),
        ["negative policy_version"] = (() => With(Samples.Rollout(), m => m.PolicyVersion = -1), "policy_version", DecodeErrorKind.Invalid),
        ["generator_id empty"] = (() => With(Samples.Rollout(), m => m.GeneratorId = " "), "generator_id: empty", DecodeErrorKind.Invalid),
        ["sampling missing"] = (() => With(Samples.Rollout(), m => m.Sampling = null), "sampling: missing", DecodeErrorKind.Invalid),
        ["temperature negative"] = (() => With(Samples.Rollout(), m => m.Sampling.Temperature = -1), "sampling.temperature", DecodeErrorKind.Invalid),
        ["temperature NaN"] = (() => With(Samples.Rollout(), m => m.Sampling.Temperature = float.NaN), "sampling.temperature", DecodeErrorKind.Invalid),
        ["top_k negative"] = (() => With(Samples.Rollout(), m => m.Sampling.TopK = -1), "sampling.top_k", DecodeErrorKind.Invalid),
        ["top_p above 1"] = (() => With(Samples.Rollout(), m => m.Sampling.TopP = 1.5f), "sampling.top_p", DecodeErrorKind.Invalid),
        ["max_new_tokens negative"] = (() => With(Samples.Rollout(), m => m.Sampling.MaxNewTokens = -1), "sampling.max_new_tokens", DecodeErrorKind.Invalid),
        ["queue_ms NaN"] = (() => With(Samples.Rollout(), m => m.Timings.QueueMs = double.NaN), "timings.queue_ms", DecodeErrorKind.Invalid),
        ["generate_ms negative"] = (() => With(Samples.Rollout(), m => m.Timings.GenerateMs = -1), "timings.generate_ms", DecodeErrorKind.Invalid),
        ["scored without rollout"] = (() => With(Samples.Scored(), m => m.Rollout = null), "rollout: missing", DecodeErrorKind.Invalid),
        ["scored rollout logprobs"] = (() => With(Samples.Scored(), m => m.Rollout.Completions[0].Logprobs.Add(-1f)), "rollout.completions[0].logprobs: 4 values for 3 tokens", DecodeErrorKind.Invalid),
        ["rewards count"] = (() => With(Samples.Scored(), m => m.Rewards.RemoveAt(1)), "rewards: 1 values for 2 completions", DecodeErrorKind.Invalid),
        ["reward NaN"] = (() => With(Samples.Scored(), m => m.Rewards[0] = float.NaN), "rewards[0]: NaN", DecodeErrorKind.Invalid),
        ["reward infinite"] = (() => With(Samples.Scored(), m => m.Rewards[1] = float.PositiveInfinity), "rewards[1]", DecodeErrorKind.Invalid),
        ["component count"] = (() => With(Samples.Scored(), m => m.RewardComponents["correct"].Values.Add(1f)), "reward_components[\"correct\"]: 3 values for 2 completions", DecodeErrorKind.Invalid),
        ["component NaN"] = (() => With(Samples.Scored(), m => m.RewardComponents["format"].Values[1] = float.NaN), "reward_components[\"format\"][1]", DecodeErrorKind.Invalid),
        ["component empty name"] = (() => With(Samples.Scored(), m => m.RewardComponents[""] = new FloatList { Values = { 0f, 0f } }), "reward_components: empty name", DecodeErrorKind.Invalid),
        ["scorer_id empty"] = (() => With(Samples.Scored(), m => m.ScorerId = ""), "scorer_id: empty", DecodeErrorKind.Invalid),
        ["scorer_version empty"] = (() => With(Samples.Scored(), m => m.ScorerVersion = ""), "scorer_version: empty", DecodeErrorKind.Invalid),
        ["negative version"] = (() => With(Samples.PolicyInline(), m => m.Version = -1), "version: -1", DecodeErrorKind.Invalid),
        ["negative step"] = (() => With(Samples.PolicyInline(), m => m.Step = -1), "step: -1", DecodeErrorKind.Invalid),
        ["policy points nowhere"] = (() => With(Samples.PolicyManifest(), m => m.ManifestLocation = ""), "manifest_location: empty and no inline weights", DecodeErrorKind.Invalid),
        ["inline weights without checksum"] = (() => With(Samples.PolicyInline(), m => m.Checksum = ""), "checksum: missing", DecodeErrorKind.Invalid),
        ["checksum malformed"] = (() => With(Samples.PolicyManifest(), m => m.Checksum = "md5:1234"), "checksum: not of the form", DecodeErrorKind.Invalid),
        ["checksum mismatch"] = (() => With(Samples.PolicyInline(), m => m.Weights = ByteString.CopyFrom(new byte[4096])), "checksum: does not match", DecodeErrorKind.Invalid),
        ["dead letter without topic"] = (() => With(Samples.DeadLetter(), m => m.OriginalTopic = ""), "original_topic: empty", DecodeErrorKind.Invalid),
        ["dead letter without reason"] = (() => With(Samples.DeadLetter(), m => m.Reason = ""), "reason: empty", DecodeErrorKind.Invalid),
        ["dead letter delivery_count"] = (() => With(Samples.DeadLetter(), m => m.DeliveryCount = -1), "delivery_count", DecodeErrorKind.Invalid),
    };

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Validation_error_names_the_field(string name)
    {
        var (build, expected, kind) = Cases[name];
        var message = build();
        // Bytes as a buggy or hostile producer would send them (no validation on the way out).
        var bytes = message.ToByteArray();
        var (ok, value, error, actualKind) = Samples.DecodeAs(message.GetType(), bytes);
        Assert.False(ok);
        Assert.Null(value);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Equal(kind, actualKind);
        Assert.Equal(error, MessageCodec.Validate(message));
        var thrown = Assert.Throws<ArgumentException>(() => Codec.Encode(message));
        Assert.Contains(expected, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_bytes_are_an_error_not_an_exception()
    {
        var r = Codec.Decode<RolloutGroup>(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff });
        Assert.False(r.Ok);
        Assert.Equal(DecodeErrorKind.Malformed, r.ErrorKind);
        Assert.StartsWith("payload: not a valid onlinerl.v1.RolloutGroup", r.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Bytes_cut_inside_a_field_are_truncated_and_corrupt_bytes_of_full_length_are_malformed()
    {
        // The last field of a scored group is scorer_version (a string): cutting into it truncates a field.
        var bytes = Codec.Encode(Samples.Scored());
        var cut = Codec.Decode<ScoredGroup>(bytes.AsSpan(0, bytes.Length - 3));
        Assert.False(cut.Ok);
        Assert.Equal(DecodeErrorKind.Truncated, cut.ErrorKind);
        Assert.StartsWith("payload: truncated onlinerl.v1.ScoredGroup: field ", cut.Error, StringComparison.Ordinal);
        Assert.Contains("only", cut.Error, StringComparison.Ordinal);

        // Cut in the middle of a nested message (the rollout, field 5 or so): still the top-level field runs past the end.
        var middle = Codec.Decode<ScoredGroup>(bytes.AsSpan(0, bytes.Length / 2));
        Assert.Equal(DecodeErrorKind.Truncated, middle.ErrorKind);

        // Wire type 7 does not exist: the bytes are corrupt, whatever their length.
        var corrupt = bytes.ToArray();
        corrupt[0] = 0x0f;
        var bad = Codec.Decode<ScoredGroup>(corrupt);
        Assert.Equal(DecodeErrorKind.Malformed, bad.ErrorKind);
    }

    [Fact]
    public void Empty_payload_is_rejected_for_its_missing_schema_version()
    {
        var r = Codec.Decode<PromptMessage>(ReadOnlySpan<byte>.Empty);
        Assert.False(r.Ok);
        Assert.Equal(DecodeErrorKind.UnsupportedSchemaVersion, r.ErrorKind);
        Assert.Equal("schema_version: missing (0)", r.Error);
    }

    [Fact]
    public void Oversized_payload_is_rejected_on_both_sides()
    {
        var small = new MessageCodec(new MessageCodecOptions { MaxPayloadBytes = 1000 });
        var message = Samples.PolicyInline(); // 4 KiB of weights
        var bytes = MessageCodec.Default.Encode(message);
        var r = small.Decode<PolicyVersion>(bytes);
        Assert.False(r.Ok);
        Assert.Equal(DecodeErrorKind.Oversized, r.ErrorKind);
        Assert.Equal($"payload: {bytes.Length} bytes exceeds the limit of 1000 bytes", r.Error);
        var thrown = Assert.Throws<ArgumentException>(() => small.Encode(message));
        Assert.Contains("exceeds the limit of 1000 bytes", thrown.Message, StringComparison.Ordinal);
        Assert.True(small.Decode<PromptMessage>(small.Encode(Samples.Prompt())).Ok);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MessageCodec(new MessageCodecOptions { MaxPayloadBytes = 0 }));
    }

    [Fact]
    public void Unknown_fields_from_a_newer_writer_are_kept()
    {
        // A newer minor revision adds field 99; old readers keep it and pass it on unchanged.
        var bytes = Codec.Encode(Samples.Prompt());
        var extra = new byte[] { 0x9a, 0x06, 0x02, 0x68, 0x69 }; // field 99, length-delimited, "hi"
        var r = Codec.Decode<PromptMessage>([.. bytes, .. extra]);
        Assert.True(r.Ok, r.Error);
        Assert.Equal([.. bytes, .. extra], r.Value.ToByteArray());
    }

    [Fact]
    public void Topics_and_their_message_types()
    {
        Assert.Equal(["prompts", "rollouts", "scored", "policy", "deadletter"], Topics.All);
        Assert.Equal("onlinerl.v1.RolloutGroup", Topics.MessageTypeOf(Topics.Rollouts));
        Assert.Equal("onlinerl.v1.DeadLetter", Topics.MessageTypeOf(Topics.DeadLetter));
        Assert.Null(Topics.MessageTypeOf("other"));
    }

    [Fact]
    public void Checksum_format()
    {
        var c = PolicyChecksums.Sha256("abc"u8);
        Assert.Equal("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", c);
        Assert.True(PolicyChecksums.IsWellFormed(c));
        Assert.False(PolicyChecksums.IsWellFormed(c.ToUpperInvariant()));
        Assert.False(PolicyChecksums.IsWellFormed(c[..^1]));
        Assert.False(PolicyChecksums.IsWellFormed(null));
    }

    private static T With<T>(T message, Action<T> change)
    {
        change(message);
        return message;
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
