namespace OnlineRl.Messaging.Kafka;

/// <summary>
/// Kafka keeps no per-message delivery count, so a bus counts deliveries itself per (group, topic, partition,
/// offset) until the message is acknowledged. The count therefore covers deliveries by this bus instance (this
/// process): nacks and handovers between its subscriptions. A message that comes back from the broker to
/// another process (after a rebalance or a crash) starts again at 1 there.
/// </summary>
internal sealed class DeliveryCounter
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Group, string Topic, int Partition, long Offset), int> _counts = [];

    /// <summary>Records one more delivery and returns the count (1 on first delivery).</summary>
    public int Next(string group, string topic, int partition, long offset)
    {
        lock (_gate)
        {
            var key = (group, topic, partition, offset);
            var count = _counts.GetValueOrDefault(key) + 1;
            _counts[key] = count;
            return count;
        }
    }

    /// <summary>Forgets an acknowledged message.</summary>
    public void Forget(string group, string topic, int partition, long offset)
    {
        lock (_gate) _counts.Remove((group, topic, partition, offset));
    }
}
