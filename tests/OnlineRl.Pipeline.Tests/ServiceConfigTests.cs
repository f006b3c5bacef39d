namespace OnlineRl.Pipeline.Tests;

// What the service commands read: file < environment < flags, and bad values stopped with the key's name.
public class ServiceConfigTests
{
    [Fact]
    public void EnvironmentOverridesTheFileAndFlagsOverrideTheEnvironment()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "transport:\n  bus: redis://10.0.0.1:6379\n  kafka:\n    enable.idempotence: true\nservice:\n  metrics_port: 9500\n");
            var environment = new Dictionary<string, string>
            {
                ["ONLINERL_TRANSPORT__BUS"] = "kafka://kafka-0:9092,kafka-1:9092",
                ["ONLINERL_SERVICE__ID"] = "gen-7",
                ["ONLINERL_TRANSPORT__KAFKA__SASL__USERNAME"] = "alice",
                ["ONLINERL_NUM_THREADS"] = "3", // not a config key: ignored
                ["PATH"] = "/usr/bin",
            };
            var config = RunConfig.Load(file, new Dictionary<string, string> { ["service.id"] = "gen-8", ["transport.kafka.security.protocol"] = "SASL_SSL" }, environment);
            Assert.Equal("kafka://kafka-0:9092,kafka-1:9092", config.Transport.Bus);
            Assert.Equal("gen-8", config.Service.Id);
            Assert.Equal(9500, config.Service.MetricsPort);
            Assert.Equal("true", config.Transport.Kafka["enable.idempotence"]);
            Assert.Equal("alice", config.Transport.Kafka["sasl.username"]);
            Assert.Equal("SASL_SSL", config.Transport.Kafka["security.protocol"]);
            Assert.Equal("memory", config.Transport.Weights);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("ONLINERL_SERVICE__METRICS_PORT", "70000", "service.metrics_port")]
    [InlineData("ONLINERL_TRANSPORT__BUS", "rabbit://x:1", "transport.bus")]
    [InlineData("ONLINERL_TRANSPORT__BUS", "kafka://no-port", "transport.bus")]
    [InlineData("ONLINERL_TRANSPORT__WEIGHTS", "s3://bucket", "transport.weights")]
    [InlineData("ONLINERL_TRAIN__CHECKPOINT_EVERY", "-1", "train.checkpoint_every")]
    [InlineData("ONLINERL_SERVICE__METRICS_PROT", "9400", "metrics_prot")]
    public void BadSettingsNameTheKey(string variable, string value, string key)
    {
        var error = Assert.Throws<ConfigException>(() => RunConfig.Load(null, null, new Dictionary<string, string> { [variable] = value }));
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ServiceProcessesRefuseProcessLocalTransportsAndBadKafkaSettingsNameTheKey()
    {
        var local = RunConfig.Load(null);
        Assert.Contains("transport.bus", Assert.Throws<ConfigException>(() => PipelineServices.RequireSharedTransports(local)).Message, StringComparison.Ordinal);
        var sharedBus = RunConfig.Load(null, new Dictionary<string, string> { ["transport.bus"] = "redis://127.0.0.1:6379" });
        Assert.Contains("transport.weights", Assert.Throws<ConfigException>(() => PipelineServices.RequireSharedTransports(sharedBus)).Message, StringComparison.Ordinal);
        var kafka = RunConfig.Load(null, new Dictionary<string, string> { ["transport.bus"] = "kafka://127.0.0.1:9", ["transport.kafka.acks"] = "0" });
        var transports = new OnlineRl.Hosting.Transports();
        var reserved = Assert.Throws<ConfigException>(() => transports.CreateBus(kafka.Transport));
        Assert.Contains("transport.kafka", reserved.Message, StringComparison.Ordinal);
        Assert.Contains("acks", reserved.Message, StringComparison.Ordinal);
        Assert.IsType<OnlineRl.Messaging.InProcessEventBus>(transports.CreateBus(local.Transport));
        Assert.IsType<OnlineRl.Weights.InMemoryBlobStore>(transports.CreateBlobStore(local.Transport));
    }
}
