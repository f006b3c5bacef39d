namespace OnlineRl.Messaging.Kafka;

/// <summary>Kafka protocol request kinds (ApiKey numbers) that <see cref="MockKafkaCluster.PushRequestErrors"/> can fail.</summary>
public enum KafkaApi : short
{
    /// <summary>ProduceRequest: a producer writing messages.</summary>
    Produce = 0,
    /// <summary>FetchRequest: a consumer reading messages.</summary>
    Fetch = 1,
    /// <summary>ListOffsetsRequest: where a partition starts and ends.</summary>
    ListOffsets = 2,
    /// <summary>MetadataRequest: brokers, topics and partition leaders.</summary>
    Metadata = 3,
    /// <summary>OffsetCommitRequest: a consumer group committing its position.</summary>
    OffsetCommit = 8,
    /// <summary>OffsetFetchRequest: a consumer group reading its committed position.</summary>
    OffsetFetch = 9,
    /// <summary>FindCoordinatorRequest: which broker coordinates a group.</summary>
    FindCoordinator = 10,
    /// <summary>JoinGroupRequest: a member joining a consumer group (a rebalance).</summary>
    JoinGroup = 11,
    /// <summary>HeartbeatRequest: a group member staying alive.</summary>
    Heartbeat = 12,
    /// <summary>LeaveGroupRequest.</summary>
    LeaveGroup = 13,
    /// <summary>SyncGroupRequest: a rebalance's assignment.</summary>
    SyncGroup = 14,
    /// <summary>InitProducerIdRequest: an idempotent producer's id and epoch.</summary>
    InitProducerId = 22,
}
