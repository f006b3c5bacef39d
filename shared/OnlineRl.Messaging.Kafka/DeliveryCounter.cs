namespace OnlineRl.Messaging.Kafka;

/// <summary>
/// The default <see cref="IDeliveryJournal"/>: counts deliveries per (group, topic, partition, offset) in this
/// process until the message is acknowledged. The count therefore covers deliveries by this bus instance (nacks and
/// handovers between its subscriptions); a message that comes back from the broker to another process (after a
/// rebalance or a crash) starts again at 1 there.
/// </summary>
internal sealed class DeliveryCounter : IDeliveryJournal
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Group, string Topic, int Partition, long Offset), int> _counts = [];

    /// <inheritdoc />
    public int Record(string group, string topic, int partition, long offset, string key)
    {
        lock (_gate)
        {
            var entry = (group, topic, partition, offset);
            var count = _counts.GetValueOrDefault(entry) + 1;
            _counts[entry] = count;
            return count;
        }
    }

    /// <inheritdoc />
    public void Acknowledged(string group, string topic, int partition, long offset)
    {
        lock (_gate) _counts.Remove((group, topic, partition, offset));
    }
}
