using OnlineRl.Bench;

const string Usage = """
    onlinerl-bench: the benchmarks of onlinerl against reference implementations on this machine.

    Usage: onlinerl-bench <command> [options]

    Commands:
      bench      Measure the binding (per-op overhead, matmul, an MLP step, KV-cache generation, a GRPO learner
                 step) against /usr/bin/python3 torch on this machine, and the in-process pipeline with and
                 without overlap; writes a results table. --out FILE --quick --only binding|generation|rl
      bench-redis Weight publication + load through Redis vs raw SET/GET, and Redis Streams throughput vs
                 redis-benchmark, on a private redis-server; writes a table. --out FILE (bench-redis.md) --quick
      compare-reference
                 Our pipeline against the plain PyTorch trainer (bench/reference_trainer.py on /usr/bin/python3) from
                 one starting checkpoint (--start DIR, or the config's SFT warm start), with the same settings, seed and
                 held-out set, one side at a time: --algorithms grpo,ppo,dpo --minutes M (3) --steps N (300)
                 --eval-every N (25) --out DIR (runs/compare-reference) --config FILE, plus config keys as flags. Writes
                 comparison.md (accuracy at each evaluation, updates and seconds) and comparison.html (the curves).
      bench-kafka KafkaEventBus against a raw Confluent.Kafka producer/consumer with rollout-sized messages on a
                 mock cluster; writes a results table. --out FILE (bench-kafka.md) --quick --completions N --tokens N
    """;

return await CommandHelp.RunAsync("onlinerl-bench", Usage, args, async (command, options) => command switch
{
    "bench" => BenchCommand.Run(options),
    // One side of the generation rows, in a fresh process (GenerationBench runs this tool again).
    "bench-generation" => GenerationBench.RunChild(options),
    "bench-redis" => await RedisBench.RunAsync(options),
    "bench-kafka" => await KafkaBench.RunAsync(options),
    "compare-reference" => await CompareReferenceCommand.RunAsync(options),
    _ => throw new UsageException($"unknown command '{command}'"),
});
