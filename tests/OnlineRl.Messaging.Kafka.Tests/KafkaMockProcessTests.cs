using System.Text;
using Confluent.Kafka;
using OnlineRl.Contracts;

namespace OnlineRl.Messaging.Kafka.Tests;

/// <summary>A fact that needs the built `onlinerl` CLI; skipped with the reason where it is missing.</summary>
public sealed class CliFactAttribute : FactAttribute
{
    public CliFactAttribute()
    {
        if (KafkaMock.FindCli(out var reason) is null) Skip = reason;
    }
}

public class KafkaMockProcessTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    [CliFact]
    public async Task Helper_process_serves_clients_and_creates_the_pipeline_topics()
    {
        using var kafka = KafkaMock.StartProcess(KafkaMock.FindCli(out _)!, brokers: 1, partitions: 3);
        Assert.Null(kafka.Cluster);
        Assert.StartsWith("kafka://127.0.0.1:", kafka.TransportUri);

        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = kafka.BootstrapServers }).Build())
        {
            var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
            foreach (var topic in Topics.All)
                Assert.Equal(3, metadata.Topics.Single(t => t.Topic == topic).Partitions.Count);
        }

        await using var bus = new KafkaEventBus(KafkaEventBusOptions.FromUri(kafka.TransportUri, KafkaMock.FastGroupSettings));
        await using var subscription = bus.Subscribe(Topics.Prompts, "generator", "generator-0");
        await bus.PublishAsync(Topics.Prompts, "p1", Encoding.UTF8.GetBytes("hello")).AsTask().WaitAsync(Guard);
        var message = await subscription.ReceiveAsync().AsTask().WaitAsync(Guard);
        Assert.Equal("hello", Encoding.UTF8.GetString(message.Payload.Span));
        await subscription.AckAsync(message);
    }

    [CliFact]
    public async Task Fault_commands_on_stdin_break_the_cluster_and_bad_ones_are_answered_with_the_reason()
    {
        using var kafka = KafkaMock.StartProcess(KafkaMock.FindCli(out _)!, brokers: 2, partitions: 2);
        await using var bus = new KafkaEventBus(KafkaEventBusOptions.FromUri(kafka.TransportUri, KafkaMock.FastGroupSettings));
        await bus.PublishAsync(Topics.Prompts, "p0", Encoding.UTF8.GetBytes("before")).AsTask().WaitAsync(Guard);

        // Both brokers down: a publish cannot complete until they are back.
        Assert.Equal("ok", kafka.Control("down 1"));
        Assert.Equal("ok", kafka.Control("down 2"));
        var blocked = bus.PublishAsync(Topics.Prompts, "p1", Encoding.UTF8.GetBytes("during")).AsTask();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(blocked.IsCompleted, "a publish completed while every broker was down");
        Assert.Equal("ok", kafka.Control("up 1"));
        Assert.Equal("ok", kafka.Control("up 2"));
        await blocked.WaitAsync(Guard);

        Assert.Equal("ok", kafka.Control("leader prompts 0 2"));
        Assert.Equal("ok", kafka.Control("errors produce NotLeaderForPartition request_timed_out 7"));
        Assert.Equal("ok", kafka.Control("rtt 1 0"));
        await bus.PublishAsync(Topics.Prompts, "p2", Encoding.UTF8.GetBytes("after")).AsTask().WaitAsync(Guard);
        Assert.Equal("ok", kafka.Control("clear produce"));

        Assert.StartsWith("error: ", kafka.Control("down 3"));
        Assert.Contains("ERROR 'NoSuchError'", kafka.Control("errors fetch NoSuchError"));
        Assert.Contains("not a command", kafka.Control("explode"));
        Assert.Contains("BROKER 'x'", kafka.Control("up x"));
    }

    [Fact]
    public void Transport_uri_is_parsed_and_bad_ones_are_refused_by_name()
    {
        var options = KafkaEventBusOptions.FromUri("kafka://broker-a:9092,broker-b:9093");
        Assert.Equal("broker-a:9092,broker-b:9093", options.BootstrapServers);
        foreach (var bad in new[] { "redis://h:1", "kafka://", "kafka://host", "kafka://host:0", "kafka://host:99999" })
            Assert.Contains("transport.bus", Assert.Throws<ArgumentException>(() => KafkaEventBusOptions.FromUri(bad)).Message);
    }
}
