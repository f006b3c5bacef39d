using Google.Protobuf;

namespace OnlineRl.Contracts;

/// <summary>
/// The envelope fields every top-level message carries (fields 1-4 of each message in onlinerl.proto):
/// implemented by <see cref="PromptMessage"/>, <see cref="RolloutGroup"/>, <see cref="ScoredGroup"/>,
/// <see cref="PolicyVersion"/> and <see cref="DeadLetter"/>.
/// </summary>
public interface IContractMessage : IMessage
{
    /// <summary>Schema version of the message (<see cref="SchemaVersions.Current"/> when written).</summary>
    uint SchemaVersion { get; set; }

    /// <summary>The training run the message belongs to.</summary>
    string RunId { get; set; }

    /// <summary>Unique id of the message (lineage and idempotency).</summary>
    string MessageId { get; set; }

    /// <summary>Creation time, Unix epoch milliseconds (UTC).</summary>
    long CreatedAtUnixMs { get; set; }
}

/// <summary>Fills the envelope of a message.</summary>
public static class ContractMessageExtensions
{
    /// <summary>
    /// Sets the envelope: the current schema version, <paramref name="runId"/>, a new time-ordered unique
    /// message id (a version-7 GUID) unless one is set, and the creation time unless one is set.
    /// </summary>
    /// <typeparam name="T">The message type.</typeparam>
    /// <param name="message">The message to stamp (changed in place).</param>
    /// <param name="runId">The training run.</param>
    /// <param name="time">Clock to read (default: the system clock).</param>
    /// <returns>The same message, for chaining.</returns>
    public static T Stamp<T>(this T message, string runId, TimeProvider? time = null) where T : IContractMessage
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(runId);
        var now = (time ?? TimeProvider.System).GetUtcNow();
        message.SchemaVersion = SchemaVersions.Current;
        message.RunId = runId;
        if (message.MessageId.Length == 0) message.MessageId = Guid.CreateVersion7(now).ToString("N");
        if (message.CreatedAtUnixMs == 0) message.CreatedAtUnixMs = now.ToUnixTimeMilliseconds();
        return message;
    }
}

// The generated classes are partial: attach the envelope interface (the properties already exist).
public sealed partial class PromptMessage : IContractMessage;
public sealed partial class RolloutGroup : IContractMessage;
public sealed partial class ScoredGroup : IContractMessage;
public sealed partial class PolicyVersion : IContractMessage;
public sealed partial class DeadLetter : IContractMessage;
