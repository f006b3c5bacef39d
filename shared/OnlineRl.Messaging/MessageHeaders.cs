namespace OnlineRl.Messaging;

/// <summary>The header names <see cref="Publisher"/> writes on every message.</summary>
public static class MessageHeaders
{
    /// <summary>The schema version of the payload, e.g. "1".</summary>
    public const string SchemaVersion = "schema-version";

    /// <summary>The protobuf full name of the payload type, e.g. "onlinerl.v1.RolloutGroup".</summary>
    public const string MessageType = "message-type";

    /// <summary>The run id of the payload.</summary>
    public const string RunId = "run-id";

    /// <summary>The message id of the payload.</summary>
    public const string MessageId = "message-id";
}
