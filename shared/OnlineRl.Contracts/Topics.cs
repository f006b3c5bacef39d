namespace OnlineRl.Contracts;

/// <summary>The topic names, identical on every transport (in-process, Redis Streams, Kafka).</summary>
public static class Topics
{
    /// <summary>Prompts to sample (<see cref="PromptMessage"/>), written by the prompt feeder.</summary>
    public const string Prompts = "prompts";

    /// <summary>Sampled groups (<see cref="RolloutGroup"/>), written by generators.</summary>
    public const string Rollouts = "rollouts";

    /// <summary>Scored groups (<see cref="ScoredGroup"/>), written by scorers.</summary>
    public const string Scored = "scored";

    /// <summary>Policy version announcements (<see cref="PolicyVersion"/>), written by the learner.</summary>
    public const string Policy = "policy";

    /// <summary>Messages that could not be processed (<see cref="DeadLetter"/>), written by any stage.</summary>
    public const string DeadLetter = "deadletter";

    /// <summary>Every topic, in pipeline order.</summary>
    public static IReadOnlyList<string> All { get; } = [Prompts, Rollouts, Scored, Policy, DeadLetter];

    /// <summary>The protobuf full name of the message type a topic carries (e.g. "onlinerl.v1.RolloutGroup"),
    /// or null for a topic this class does not know.</summary>
    /// <param name="topic">A topic name.</param>
    public static string? MessageTypeOf(string topic) => topic switch
    {
        Prompts => PromptMessage.Descriptor.FullName,
        Rollouts => RolloutGroup.Descriptor.FullName,
        Scored => ScoredGroup.Descriptor.FullName,
        Policy => PolicyVersion.Descriptor.FullName,
        DeadLetter => Contracts.DeadLetter.Descriptor.FullName,
        _ => null,
    };
}
