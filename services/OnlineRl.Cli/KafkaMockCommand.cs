using System.Runtime.InteropServices;
using OnlineRl.Contracts;
using OnlineRl.Messaging.Kafka;

namespace OnlineRl.Cli;

/// <summary>
/// `onlinerl kafka-mock`: librdkafka's mock Kafka cluster in its own process, so that several service
/// processes can share it. The first stdout line is the bootstrap address; every later stdin line is a fault
/// command (<see cref="MockKafkaControl"/>) answered by one stdout line. It runs until stdin closes, SIGTERM or SIGINT.
/// </summary>
internal static class KafkaMockCommand
{
    public static async Task<int> RunAsync(Options options)
    {
        var brokers = options.Int("brokers", 1);
        var partitions = options.Int("partitions", 4);
        var rebalanceDelayMs = options.Int("rebalance-delay-ms", (int)MockKafkaCluster.KafkaDefaultInitialRebalanceDelay.TotalMilliseconds);
        var ignoreStdin = options.Flag("ignore-stdin");
        options.RejectUnknown();
        if (brokers < 1) throw new UsageException("--brokers must be at least 1");
        if (partitions < 1) throw new UsageException("--partitions must be at least 1");
        if (rebalanceDelayMs < 0) throw new UsageException("--rebalance-delay-ms must not be negative");

        using var cluster = new MockKafkaCluster(brokers, TimeSpan.FromMilliseconds(rebalanceDelayMs));
        // The pipeline's topics get the requested partition count; any other topic is auto-created with 4.
        foreach (var topic in Topics.All) cluster.CreateTopic(topic, partitions);
        Console.WriteLine(cluster.BootstrapServers);
        Console.Out.Flush();
        Console.Error.WriteLine($"mock Kafka cluster: {brokers} broker(s), topics {string.Join(", ", Topics.All)} with {partitions} partitions; "
            + (ignoreStdin ? "stop with SIGTERM or SIGINT" : $"fault commands on stdin ({MockKafkaControl.Usage}); stop by closing stdin, SIGTERM or SIGINT"));

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // we stop ourselves, after disposing the cluster
            stop.TrySetResult();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        if (!ignoreStdin)
        {
            // A background thread: reading stdin blocks. Each line is a fault-injection command, answered on stdout.
            var control = new Thread(() =>
            {
                while (Console.In.ReadLine() is { } line)
                {
                    if (line.Trim().Length == 0) continue;
                    Console.WriteLine(MockKafkaControl.Execute(cluster, line));
                    Console.Out.Flush();
                }
                stop.TrySetResult();
            }) { IsBackground = true, Name = "kafka-mock control" };
            control.Start();
        }
        await stop.Task;
        return 0;
    }
}
