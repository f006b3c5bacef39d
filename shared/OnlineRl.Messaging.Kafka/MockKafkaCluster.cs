using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace OnlineRl.Messaging.Kafka;

/// <summary>
/// librdkafka's built-in mock Kafka cluster: real Kafka protocol over TCP on loopback ports, in this process,
/// for tests, benchmarks and the <c>onlinerl kafka-mock</c> helper process. Any Kafka client (also in other
/// processes) connects through <see cref="BootstrapServers"/>.
/// </summary>
/// <remarks>
/// Limits of the mock (librdkafka's): it keeps only a few MB per partition (older messages are dropped), has
/// no CreateTopics admin call (topics come from <see cref="CreateTopic"/> or are auto-created on first use with
/// 4 partitions), no authentication and no TLS (plaintext listeners only), and loses everything when disposed.
/// Dispose it: it holds native threads and sockets.
/// <para>Faults, while clients run: a broker down and up again (<see cref="SetBrokerDown"/>, <see cref="SetBrokerUp"/>),
/// a new partition leader (<see cref="SetPartitionLeader"/>) or group coordinator (<see cref="SetGroupCoordinator"/>),
/// errors answered to the next requests of a kind (<see cref="PushRequestErrors"/>) and a slow broker
/// (<see cref="SetBrokerRoundTripTime"/>). Brokers are numbered 1 to <see cref="Brokers"/>.</para>
/// </remarks>
public sealed class MockKafkaCluster : IDisposable
{
    /// <summary>Kafka's default delay before the first rebalance of a new consumer group: 3 s.</summary>
    public static readonly TimeSpan KafkaDefaultInitialRebalanceDelay = TimeSpan.FromSeconds(3);

    private readonly Lock _gate = new();
    private IntPtr _handle;   // the rd_kafka_t that owns the mock cluster
    private IntPtr _cluster;  // rd_kafka_mock_cluster_t

    /// <summary>Starts a mock cluster listening on loopback.</summary>
    /// <param name="brokers">How many brokers (at least 1).</param>
    /// <param name="initialRebalanceDelay">How long a new consumer group waits for more members before its
    /// first assignment (default <see cref="KafkaDefaultInitialRebalanceDelay"/>; tests use less).</param>
    /// <exception cref="InvalidOperationException">librdkafka could not create the cluster.</exception>
    public MockKafkaCluster(int brokers = 1, TimeSpan? initialRebalanceDelay = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        var delay = initialRebalanceDelay ?? KafkaDefaultInitialRebalanceDelay;
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero, nameof(initialRebalanceDelay));
        Brokers = brokers;
        var conf = LibRdKafka.rd_kafka_conf_new();
        // The handle never connects anywhere; warnings only (it would complain that it has no bootstrap servers).
        SetOrThrow(conf, "log_level", "3");
        _handle = NewHandle(conf);
        _cluster = LibRdKafka.rd_kafka_mock_cluster_new(_handle, brokers);
        if (_cluster == IntPtr.Zero)
        {
            LibRdKafka.rd_kafka_destroy(_handle);
            throw new InvalidOperationException($"librdkafka could not create a mock cluster of {brokers} broker(s).");
        }
        BootstrapServers = Marshal.PtrToStringUTF8(LibRdKafka.rd_kafka_mock_cluster_bootstraps(_cluster))
            ?? throw new InvalidOperationException("The mock cluster reported no bootstrap address.");
        // With a controller in its metadata, admin clients get a prompt "not supported" for CreateTopics
        // (instead of waiting for a controller until they time out), so KafkaEventBus falls back to auto-creation.
        ThrowOnError(LibRdKafka.rd_kafka_mock_set_controller_id(_cluster, 1), "set the controller");
        ThrowOnError(LibRdKafka.rd_kafka_mock_group_initial_rebalance_delay_ms(_cluster, (int)delay.TotalMilliseconds),
            "set the initial rebalance delay");
    }

    /// <summary>The bootstrap address list, "127.0.0.1:PORT,..." (one entry per broker).</summary>
    public string BootstrapServers { get; }

    /// <summary>How many brokers the cluster has.</summary>
    public int Brokers { get; }

    /// <summary>Creates a topic (an existing topic is an error).</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partitions">Its partition count (at least 1).</param>
    /// <param name="replicationFactor">Replicas per partition (1 to <see cref="Brokers"/>).</param>
    /// <exception cref="InvalidOperationException">The mock refused (e.g. the topic exists).</exception>
    public void CreateTopic(string topic, int partitions, int replicationFactor = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(replicationFactor, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(replicationFactor, Brokers);
        Run(cluster => LibRdKafka.rd_kafka_mock_topic_create(cluster, topic, partitions, replicationFactor), $"create topic '{topic}'");
    }

    /// <summary>
    /// Takes a broker down: its connections are closed and new ones refused. Partitions it leads stay led by it
    /// (Kafka would elect a new leader; here that is <see cref="SetPartitionLeader"/>), so their produce and fetch
    /// requests wait for it to come back.
    /// </summary>
    /// <param name="brokerId">1 to <see cref="Brokers"/>.</param>
    public void SetBrokerDown(int brokerId) =>
        Run(cluster => LibRdKafka.rd_kafka_mock_broker_set_down(cluster, CheckBroker(brokerId)), $"take broker {brokerId} down");

    /// <summary>Lets a broker taken down accept connections again.</summary>
    /// <param name="brokerId">1 to <see cref="Brokers"/>.</param>
    public void SetBrokerUp(int brokerId) =>
        Run(cluster => LibRdKafka.rd_kafka_mock_broker_set_up(cluster, CheckBroker(brokerId)), $"bring broker {brokerId} up");

    /// <summary>Delays every answer of a broker by <paramref name="roundTripTime"/> (zero: no delay).</summary>
    /// <param name="brokerId">1 to <see cref="Brokers"/>.</param>
    /// <param name="roundTripTime">The added delay, below 2^31 ms.</param>
    public void SetBrokerRoundTripTime(int brokerId, TimeSpan roundTripTime)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(roundTripTime, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(roundTripTime.TotalMilliseconds, int.MaxValue, nameof(roundTripTime));
        Run(cluster => LibRdKafka.rd_kafka_mock_broker_set_rtt(cluster, CheckBroker(brokerId), (int)roundTripTime.TotalMilliseconds),
            $"set the round-trip time of broker {brokerId}");
    }

    /// <summary>
    /// Moves the leadership of a partition to another broker: clients get "not leader" from the old one, refresh
    /// their metadata and follow (a Kafka leader election).
    /// </summary>
    /// <param name="topic">The topic (auto-created when unknown).</param>
    /// <param name="partition">The partition.</param>
    /// <param name="brokerId">The new leader, 1 to <see cref="Brokers"/>.</param>
    public void SetPartitionLeader(string topic, int partition, int brokerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        Run(cluster => LibRdKafka.rd_kafka_mock_partition_set_leader(cluster, topic, partition, CheckBroker(brokerId)),
            $"make broker {brokerId} the leader of {topic} partition {partition}");
    }

    /// <summary>Makes <paramref name="brokerId"/> the coordinator of a consumer group (members must find it again).</summary>
    /// <param name="groupId">The consumer group.</param>
    /// <param name="brokerId">1 to <see cref="Brokers"/>.</param>
    public void SetGroupCoordinator(string groupId, int brokerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        Run(cluster => LibRdKafka.rd_kafka_mock_coordinator_set(cluster, "group", groupId, CheckBroker(brokerId)),
            $"make broker {brokerId} the coordinator of group '{groupId}'");
    }

    /// <summary>
    /// Answers the next requests of kind <paramref name="api"/>, to any client and broker, with these errors in
    /// order (one request each) instead of handling them. <see cref="ErrorCode.Local_Transport"/> closes the
    /// connection instead.
    /// </summary>
    /// <param name="api">The request kind.</param>
    /// <param name="errors">The errors, e.g. <see cref="ErrorCode.NotLeaderForPartition"/>, <see cref="ErrorCode.RequestTimedOut"/>.</param>
    public unsafe void PushRequestErrors(KafkaApi api, params ErrorCode[] errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (errors.Length == 0) return;
        var codes = errors.Select(e => (int)e).ToArray();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_cluster == IntPtr.Zero, this);
            fixed (int* first = codes) LibRdKafka.rd_kafka_mock_push_request_errors_array(_cluster, (short)api, (nuint)codes.Length, first);
        }
    }

    /// <summary>Drops the errors <see cref="PushRequestErrors"/> queued for <paramref name="api"/> that no request took yet.</summary>
    /// <param name="api">The request kind.</param>
    public void ClearRequestErrors(KafkaApi api)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_cluster == IntPtr.Zero, this);
            LibRdKafka.rd_kafka_mock_clear_request_errors(_cluster, (short)api);
        }
    }

    /// <summary>Stops the brokers and frees the cluster; connected clients see the brokers go down.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_cluster == IntPtr.Zero) return;
            LibRdKafka.rd_kafka_mock_cluster_destroy(_cluster);
            LibRdKafka.rd_kafka_destroy(_handle);
            _cluster = IntPtr.Zero;
            _handle = IntPtr.Zero;
        }
    }

    private int CheckBroker(int brokerId)
    {
        if (brokerId < 1 || brokerId > Brokers)
            throw new ArgumentOutOfRangeException(nameof(brokerId), brokerId, $"The mock cluster has brokers 1 to {Brokers}.");
        return brokerId;
    }

    /// <summary>Runs one librdkafka mock call on the live cluster; its error code becomes an exception naming what failed.</summary>
    private void Run(Func<IntPtr, int> call, string what)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_cluster == IntPtr.Zero, this);
            ThrowOnError(call(_cluster), what);
        }
    }

    private static unsafe void SetOrThrow(IntPtr conf, string name, string value)
    {
        var error = stackalloc byte[512];
        if (LibRdKafka.rd_kafka_conf_set(conf, name, value, error, 512) != 0)
        {
            LibRdKafka.rd_kafka_conf_destroy(conf);
            throw new InvalidOperationException($"librdkafka refused {name}={value}: {Marshal.PtrToStringUTF8((IntPtr)error)}");
        }
    }

    /// <summary>rd_kafka_new takes ownership of conf only on success.</summary>
    private static unsafe IntPtr NewHandle(IntPtr conf)
    {
        var error = stackalloc byte[512];
        var handle = LibRdKafka.rd_kafka_new(LibRdKafka.ProducerType, conf, error, 512);
        if (handle != IntPtr.Zero) return handle;
        LibRdKafka.rd_kafka_conf_destroy(conf);
        throw new InvalidOperationException($"librdkafka could not create a client handle: {Marshal.PtrToStringUTF8((IntPtr)error)}");
    }

    private static void ThrowOnError(int error, string what)
    {
        if (error != 0)
            throw new InvalidOperationException($"Mock Kafka cluster could not {what}: {LibRdKafka.ErrorText(error)}.");
    }
}
