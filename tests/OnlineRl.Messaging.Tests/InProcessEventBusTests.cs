
namespace OnlineRl.Messaging.Tests;

// What only the in-process bus has or checks; the transport contract (delivery, groups, acks, backpressure,
// cancellation) runs against it in InProcessEventBusContractTests.
public class InProcessEventBusTests
{
    [Fact]
    public async Task Ack_of_a_foreign_or_undelivered_message_is_rejected()
    {
        await using var bus = new InProcessEventBus();
        await using var sub = bus.Subscribe("t", "g", "c");
        await using var other = bus.Subscribe("u", "g", "c");
        await EventBusContractTests.PublishMany(bus, "t", 2);
        await bus.PublishAsync("u", "k", EventBusContractTests.Bytes(0)).Guarded();
        var m = await sub.ReceiveAsync().Guarded();
        var foreign = await other.ReceiveAsync().Guarded();
        await Assert.ThrowsAsync<ArgumentException>(() => sub.AckAsync(foreign).AsTask());
        await Assert.ThrowsAsync<InvalidOperationException>(() => sub.AckAsync(m with { Id = "1" }).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => sub.AckAsync(m with { Id = "x" }).AsTask());
    }

    [Fact]
    public async Task Deleting_a_stalled_group_releases_the_publisher()
    {
        await using var bus = new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 1 });
        await using var stalled = bus.Subscribe("t", "stalled", "s");
        await EventBusContractTests.PublishMany(bus, "t", 1);
        var blocked = bus.PublishAsync("t", "k", EventBusContractTests.Bytes(1)).AsTask();
        Assert.False(blocked.IsCompleted);
        await using var live = bus.Subscribe("t", "live", "l");
        await EventBusContractTests.ReceiveAndAck(live, 1);
        Assert.False(blocked.IsCompleted);
        Assert.True(bus.DeleteGroup("t", "stalled"));
        await blocked.Guarded();
        Assert.False(bus.DeleteGroup("t", "stalled"));
        Assert.Null(bus.Lag("t", "stalled"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stalled.ReceiveAsync().AsTask());
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new InProcessEventBus(new InProcessEventBusOptions { DefaultCapacity = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InProcessEventBus(new InProcessEventBusOptions
        {
            TopicCapacities = new Dictionary<string, int> { ["t"] = -1 },
        }));
    }
}
