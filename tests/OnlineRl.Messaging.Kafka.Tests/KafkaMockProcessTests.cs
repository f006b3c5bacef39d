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

    [Fact]
    public void Transport_uri_is_parsed_and_bad_ones_are_refused_by_name()
    {
        var options = KafkaEventBusOptions.FromUri("kafka://broker-a:9092,broker-b:9093");
        Assert.Equal("broker-a:9092,broker-b:9093", options.BootstrapServers);
        foreach (var bad in new[] { "redis://h:1", "kafka://", "kafka://host", "kafka://host:0", "kafka://host:99999" })
            Assert.Contains("transport.bus", Assert.Throws<ArgumentException>(() => KafkaEventBusOptions.FromUri(bad)).Message);
    }
}
