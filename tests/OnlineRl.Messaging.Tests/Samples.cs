using Google.Protobuf;

namespace OnlineRl.Messaging.Tests;

/// <summary>Valid messages of every type, freshly built on each call.</summary>
internal static class Samples
{
    public const string RunId = "run-test";

    public static PromptMessage Prompt() => new PromptMessage
    {
        PromptId = "gsm8k-train-17",
        Text = "Natalia sold clips to 48 of her friends in April. How many?",
        TokenIds = { 45, 3000, 17, 50256 },
        Metadata = { ["answer"] = "72", ["task"] = "gsm8k" },
        Dataset = "gsm8k",
        DatasetIndex = 17,
    }.Stamp(RunId);

    public static RolloutGroup Rollout() => new RolloutGroup
    {
        Prompt = Prompt(),
        Completions =
        {
            // Sampled across an in-flight weight swap: its last token under version 4.
            new Completion { TokenIds = { 5, 6, 7 }, Logprobs = { -0.5f, -1.25f, -0.01f }, Text = "72", FinishReason = FinishReason.Stop, TokenPolicyVersions = { 3, 3, 4 } },
            new Completion { TokenIds = { 8, 9 }, Logprobs = { -2f, -0.75f }, Text = "7", FinishReason = FinishReason.Length },
        },
        PolicyVersion = 3,
        GeneratorId = "generator-0",
        Sampling = new SamplingParams { Temperature = 1f, TopK = 50, TopP = 0.95f, MaxNewTokens = 256, Seed = 1234567890123UL },
        Timings = new RolloutTimings { QueueMs = 12.5, GenerateMs = 840.25 },
    }.Stamp(RunId);

    public static ScoredGroup Scored() => new ScoredGroup
    {
        Rollout = Rollout(),
        Rewards = { 1f, 0f },
        RewardComponents =
        {
            ["correct"] = new FloatList { Values = { 1f, 0f } },
            ["format"] = new FloatList { Values = { 0.5f, -0.5f } },
        },
        ScorerId = "scorer-0",
        ScorerVersion = "gsm8k-exact-match@1",
    }.Stamp(RunId);

    public static PolicyVersion PolicyInline()
    {
        var weights = new byte[4096];
        for (var i = 0; i < weights.Length; i++) weights[i] = (byte)(i * 31 + 7);
        return new PolicyVersion
        {
            Version = 4,
            Step = 40,
            Weights = ByteString.CopyFrom(weights),
            Checksum = PolicyChecksums.Sha256(weights),
        }.Stamp(RunId);
    }

    public static PolicyVersion PolicyManifest() => new PolicyVersion
    {
        Version = 5,
        Step = 50,
        ManifestLocation = "onlinerl:run-test:weights:5:manifest",
        Checksum = PolicyChecksums.Sha256("manifest"u8),
    }.Stamp(RunId);

    public static DeadLetter DeadLetter() => new DeadLetter
    {
        OriginalTopic = Topics.Rollouts,
        Key = "gsm8k-train-17",
        Payload = ByteString.CopyFrom(0xde, 0xad, 0xbe, 0xef),
        Reason = "payload: not a valid onlinerl.v1.RolloutGroup",
        ServiceId = "scorer-0",
        Stage = "scorer",
        OriginalHeaders = { [MessageHeaders.RunId] = RunId },
        OriginalId = "42",
        DeliveryCount = 1,
    }.Stamp(RunId);

    /// <summary>One valid message of each type.</summary>
    public static IReadOnlyList<IContractMessage> All() =>
        [Prompt(), Rollout(), Scored(), PolicyInline(), PolicyManifest(), DeadLetter()];

    /// <summary>Decodes with the codec as the runtime type of <paramref name="like"/>.</summary>
    public static (bool Ok, IContractMessage? Value, string? Error, DecodeErrorKind Kind) DecodeAs(
        Type type, ReadOnlySpan<byte> bytes, MessageCodec? codec = null)
    {
        codec ??= MessageCodec.Default;
        return type.Name switch
        {
            nameof(PromptMessage) => Pack(codec.Decode<PromptMessage>(bytes)),
            nameof(RolloutGroup) => Pack(codec.Decode<RolloutGroup>(bytes)),
            nameof(ScoredGroup) => Pack(codec.Decode<ScoredGroup>(bytes)),
            nameof(PolicyVersion) => Pack(codec.Decode<PolicyVersion>(bytes)),
            nameof(Contracts.DeadLetter) => Pack(codec.Decode<DeadLetter>(bytes)),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
    }

    public static readonly Type[] MessageTypes =
        [typeof(PromptMessage), typeof(RolloutGroup), typeof(ScoredGroup), typeof(PolicyVersion), typeof(DeadLetter)];

    private static (bool, IContractMessage?, string?, DecodeErrorKind) Pack<T>(DecodeResult<T> r) where T : class, IContractMessage =>
        (r.Ok, r.Value, r.Error, r.ErrorKind);
}
