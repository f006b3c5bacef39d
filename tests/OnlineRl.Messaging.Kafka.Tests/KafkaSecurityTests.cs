using System.Diagnostics;
using Confluent.Kafka;

namespace OnlineRl.Messaging.Kafka.Tests;

// Kafka security settings (SASL PLAIN/SCRAM, TLS) pass through to librdkafka. librdkafka's mock cluster speaks
// neither SASL nor TLS, which is what these tests use: a client configured for them is refused by the brokers, and
// the bus must then fail its publishes and receives at once with an error naming the brokers (not retry for ever),
// while no secret appears in the error or in anything the bus logs, librdkafka's own debug output included.
public class KafkaSecurityTests
{
    private static readonly TimeSpan Refusal = TimeSpan.FromSeconds(30);
    private const string Secret = "kafka-secret-0451";

    public static TheoryData<string> Mechanisms => ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

    [Theory]
    [MemberData(nameof(Mechanisms))]
    public async Task A_broker_refusing_the_sasl_login_fails_the_bus_at_once_naming_it_and_no_secret_is_shown(string mechanism)
    {
        using var kafka = KafkaMock.StartInProcess();
        var logger = new CapturingLogger();
        var settings = new Dictionary<string, string>
        {
            ["security.protocol"] = "SASL_PLAINTEXT", ["sasl.mechanism"] = mechanism,
            ["sasl.username"] = "trainer", ["sasl.password"] = Secret,
            ["debug"] = "security,broker,protocol", // librdkafka's own tracing of the login must not show the password either
        };
        await AssertRefusedAsync(kafka, settings, logger, $"sasl.mechanism={mechanism}");
    }

    [SkippableFact]
    public async Task Tls_to_a_plaintext_broker_fails_the_bus_at_once_naming_it()
    {
        Skip.If(TestCertificates.MissingReason is not null, TestCertificates.MissingReason);
        using var certificates = TestCertificates.Create();
        using var kafka = KafkaMock.StartInProcess();
        var logger = new CapturingLogger();
        var settings = new Dictionary<string, string>
        {
            ["security.protocol"] = "SSL", ["ssl.ca.location"] = certificates.CaFile,
            ["ssl.certificate.location"] = certificates.ClientCertificateFile, ["ssl.key.location"] = certificates.ClientKeyFile,
            ["ssl.key.password"] = Secret,
        };
        await AssertRefusedAsync(kafka, settings, logger, "security.protocol=SSL");
    }

    [Fact]
    public void Tls_files_that_do_not_exist_are_refused_by_name_when_the_bus_is_made()
    {
        var missing = new KafkaEventBusOptions
        {
            BootstrapServers = "127.0.0.1:1",
            Settings = new Dictionary<string, string> { ["security.protocol"] = "SSL", ["ssl.ca.location"] = "/nonexistent/ca.pem" },
        };
        var error = Assert.Throws<ArgumentException>(() => new KafkaEventBus(missing));
        Assert.Contains("ssl.ca.location", error.Message);
    }

    private static async Task AssertRefusedAsync(KafkaMock kafka, Dictionary<string, string> settings, CapturingLogger logger, string named)
    {
        await using var bus = new KafkaEventBus(new KafkaEventBusOptions { BootstrapServers = kafka.BootstrapServers, Settings = settings }, logger);
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<TransportAuthenticationException>(() => bus.PublishAsync("secured", "k", new byte[] { 1 }).AsTask().WaitAsync(Refusal));
        Assert.True(clock.Elapsed < Refusal, $"the refusal took {clock.Elapsed}");
        Assert.Contains(kafka.BootstrapServers, error.Message);
        Assert.Contains(named, error.Message);
        // Every later call fails with the same reason: a service stops with it instead of waiting.
        Assert.Same(error, Assert.Throws<TransportAuthenticationException>(() => bus.Subscribe("secured", "readers", "reader-0")));
        Assert.Same(error, await Assert.ThrowsAsync<TransportAuthenticationException>(() => bus.PublishAsync("secured", "k", new byte[] { 2 }).AsTask()));

        Assert.DoesNotContain(Secret, error.ToString());
        Assert.NotEmpty(logger.Lines);
        Assert.All(logger.Lines, line => Assert.DoesNotContain(Secret, line));
    }
}
