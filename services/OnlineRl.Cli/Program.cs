using OnlineRl.Cli;

const string Usage = """
    onlinerl: online RL post-training for language models.

    Usage: onlinerl <command> [options]

    Commands:
      smoke   Train a small MLP on the libtorch binding and print progress (a quick health check).
              --steps N (2000)  --lr X (0.003)  --seed N (1)  --threads N (all cores)
      bench   Measure the binding against /usr/bin/python3 torch on this machine; writes a results table.
              --out FILE (bench-results.md)  --quick

    Environment: ONLINERL_NUM_THREADS sets libtorch's thread count (default: all cores).
    """;

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}

try
{
    var options = new Options(args.Skip(1));
    return args[0] switch
    {
        "smoke" => SmokeCommand.Run(options),
        "bench" => BenchCommand.Run(options),
        _ => throw new UsageException($"unknown command '{args[0]}'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}\n");
    Console.Error.WriteLine(Usage);
    return 2;
}
