using System.Globalization;
using Xunit.Abstractions;

namespace OnlineRl.Distributed.Tests;

// Service processes with credentials: the Redis password in the transport URI and Kafka SASL settings from the
// environment (as a Kubernetes Secret would set them). The secrets must appear in no log line, no /metrics sample
// and no file of a run's report; a wrong Redis password or a Kafka login the brokers refuse must stop the service
// with an error naming the endpoint, within seconds instead of retrying for ever.
[Collection(DistributedCollection.Name)]
public sealed class SecuredTransportTests(SftCheckpointFixture start, ITestOutputHelper output)
{
    private const string RedisSecret = "redis-secret-8812";
    private const string KafkaSecret = "kafka-secret-3907";
    private static readonly TimeSpan Refusal = TimeSpan.FromSeconds(60);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [DistributedFact]
    public async Task Secrets_stay_out_of_logs_metrics_and_the_report_and_refused_credentials_stop_a_service_naming_the_endpoint()
    {
        using var redis = RedisServer.Start("--requirepass", RedisSecret);
        using var kafka = KafkaMock.StartProcess(start.Cli);
        var root = Directory.CreateTempSubdirectory("onlinerl-secrets-").FullName;
        try
        {
            var redisUri = $"redis://:{RedisSecret}@127.0.0.1:{redis.Port}";
            var environment = new Dictionary<string, string>
            {
                ["ONLINERL_TRANSPORT__BUS"] = kafka.TransportUri,
                ["ONLINERL_TRANSPORT__WEIGHTS"] = redisUri,
                // PLAINTEXT brokers: librdkafka keeps but does not use the SASL password; its debug output must not show it.
                ["ONLINERL_TRANSPORT__KAFKA__SASL__USERNAME"] = "trainer",
                ["ONLINERL_TRANSPORT__KAFKA__SASL__PASSWORD"] = KafkaSecret,
                ["ONLINERL_TRANSPORT__KAFKA__DEBUG"] = "conf,security,broker",
                ["ONLINERL_NUM_THREADS"] = "1",
            };

            // A scorer that works: its whole output and its /metrics, sampled while it runs.
            var port = LoopbackPort.Free();
            using (var scorer = Service(root, "scorer", "scorer-0", environment, "--service.metrics_port", port.ToString(CultureInfo.InvariantCulture)))
            {
                await scorer.WaitForLineAsync(line => line.Contains("assigned partitions", StringComparison.Ordinal), Refusal);
                var metrics = await Http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
                Assert.Contains("# TYPE", metrics);
                AssertNoSecret(metrics, "/metrics");
                Assert.True(await scorer.TerminateAsync(TimeSpan.FromSeconds(15)), "the scorer did not stop on SIGTERM");
                Assert.Contains(scorer.Lines, line => line.Contains("sasl", StringComparison.OrdinalIgnoreCase)); // librdkafka did trace its configuration
                AssertNoSecret(string.Join('\n', scorer.Lines), "the scorer's output");
            }

            // A wrong Redis password: every service opens the weight store first and stops, naming the endpoint.
            var wrongRedis = new Dictionary<string, string>(environment) { ["ONLINERL_TRANSPORT__WEIGHTS"] = $"redis://:not-{RedisSecret}@127.0.0.1:{redis.Port}" };
            await AssertRefusedAsync(Service(root, "feeder", "feeder-0", wrongRedis), $"Redis at redis://:***@127.0.0.1:{redis.Port} refused");

            // A Kafka login the brokers refuse (they speak no SASL): the service stops, naming the brokers.
            var sasl = new Dictionary<string, string>(environment)
            {
                ["ONLINERL_TRANSPORT__KAFKA__SECURITY__PROTOCOL"] = "SASL_PLAINTEXT", ["ONLINERL_TRANSPORT__KAFKA__SASL__MECHANISM"] = "SCRAM-SHA-256",
            };
            await AssertRefusedAsync(Service(root, "scorer", "scorer-1", sasl), $"Kafka at {kafka.BootstrapServers} refused");

            // The all-in-one run over the same transports: its report folder holds no secret either.
            var outputDir = Path.Combine(root, "run");
            using (var run = Service(root, "run", "run", environment, "--sft.steps", "0", "--train.steps", "2",
                       "--algorithm.prompts_per_step", "4", "--task.eval_size", "0", "--output_dir", outputDir, "--service.metrics_port", "0"))
            {
                Assert.True(await run.WaitForExitAsync(TimeSpan.FromMinutes(3)), $"onlinerl run did not finish:\n{run.Tail()}");
                Assert.True(run.ExitCode == 0, $"onlinerl run failed:\n{run.Tail()}");
                AssertNoSecret(string.Join('\n', run.Lines), "the run's output");
            }
            var reportFiles = Directory.GetFiles(outputDir, "*", SearchOption.TopDirectoryOnly);
            Assert.Contains(reportFiles, f => Path.GetFileName(f) == "config.json");
            foreach (var file in reportFiles) AssertNoSecret(File.ReadAllText(file), file);
            Assert.Contains("redis://:***@", File.ReadAllText(Path.Combine(outputDir, "config.json")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private ServiceProcess Service(string root, string command, string id, IReadOnlyDictionary<string, string> environment, params string[] arguments) =>
        ServiceProcess.Start(id, start.Cli, [command, "--service.id", id, "--run_id", "secured", "--model.checkpoint", start.Checkpoint, .. arguments],
            Path.Combine(root, "logs", id + ".log"), environment);

    private async Task AssertRefusedAsync(ServiceProcess service, string expected)
    {
        using (service)
        {
            Assert.True(await service.WaitForExitAsync(Refusal), $"{service.Name} kept running with refused credentials:\n{service.Tail()}");
            output.WriteLine($"{service.Name} exited with {service.ExitCode}: {service.Lines.LastOrDefault(l => l.StartsWith("error:", StringComparison.Ordinal))}");
            Assert.Equal(3, service.ExitCode);
            Assert.Contains(service.Lines, line => line.StartsWith("error: ", StringComparison.Ordinal) && line.Contains(expected, StringComparison.Ordinal));
            AssertNoSecret(string.Join('\n', service.Lines), $"{service.Name}'s output");
        }
    }

    private static void AssertNoSecret(string text, string where)
    {
        Assert.False(text.Contains(RedisSecret, StringComparison.Ordinal), $"the Redis password appears in {where}");
        Assert.False(text.Contains(KafkaSecret, StringComparison.Ordinal), $"the Kafka password appears in {where}");
    }
}
