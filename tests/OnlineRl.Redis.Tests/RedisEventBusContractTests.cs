namespace OnlineRl.Redis.Tests;

/// <summary>The shared transport contract against a real redis-server (one per test run; a key prefix per bus).</summary>
public class RedisEventBusContractTests : EventBusContractTests
{
    protected override IEventBus CreateBus(int defaultCapacity = 10_000, IReadOnlyDictionary<string, int>? topicCapacities = null) =>
        new RedisEventBus(new RedisEventBusOptions
        {
            Address = RedisServer.Shared.Address,
            KeyPrefix = $"contract-{Guid.NewGuid():N}",
            DefaultCapacity = defaultCapacity,
            TopicCapacities = topicCapacities ?? new Dictionary<string, int>(),
        });
}
