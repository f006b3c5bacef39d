namespace OnlineRl.Messaging.Tests;

/// <summary>The shared transport contract, run against the in-process bus (the reference implementation).</summary>
public class InProcessEventBusContractTests : EventBusContractTests
{
    protected override IEventBus CreateBus(int defaultCapacity = 10_000, IReadOnlyDictionary<string, int>? topicCapacities = null) =>
        new InProcessEventBus(new InProcessEventBusOptions
        {
            DefaultCapacity = defaultCapacity,
            TopicCapacities = topicCapacities ?? new Dictionary<string, int>(),
        });
}
