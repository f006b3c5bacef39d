using OnlineRl.Cli;

const string Usage = """
    onlinerl: online RL post-training for language models.

    Usage: onlinerl <command> [options]

    Commands:
      run        The all-in-one online RL run: feeder, generator, scorer and learner in one process on the
                 in-process bus. --config FILE (YAML or JSON), then any config key as a flag overriding it,
                 e.g. --algorithm.name ppo --train.steps 50 --sampling.group_size 8. Defaults: GRPO on the
                 synthetic "a+b=" task, a small model warm-started by SFT (see configs/grpo-addition.yaml).
      sft        Supervised fine-tuning: a new small model on the "a+b=" task, or --model DIR on --data
                 prompt/answer JSONL. --out DIR --steps N (200) --lr X (0.001) --batch N (256) --lora-rank R
      train-rm   A reward model (Bradley-Terry loss) from JSONL pairs {"prompt","chosen","rejected"} on top of
                 --model DIR, or without --data from "a+b=" pairs for a new small model. --out DIR --steps N (200)
                 --lr X (0.0003) --batch N (64). Use it in a run with --reward.model DIR.
      tokenize   Text to token ids, one line per input: --tokenizer DIR|char:ALPHABET|byte
                 (--text TEXT | --file FILE) [--decode: ids to text instead]
      generate   Completions with per-token log-probs: --model DIR --prompt TEXT [--chat] --n N
                 --max-new-tokens N (64) --temperature X (1) --top-k K --top-p P --seed N --device cpu|cuda
      init-model A randomly initialised model in the safetensors format: --out DIR --tokenizer DIR|char:..|byte
                 --hidden-size N --layers N --heads N --kv-heads N --intermediate-size N --qkv-bias --untied
                 --dtype float32|bfloat16|float16 --seed N
      bench      Measure the binding (per-op overhead, matmul, an MLP step, KV-cache generation, a GRPO learner
                 step) against /usr/bin/python3 torch on this machine, and the in-process pipeline with and
                 without overlap; writes a results table. --out FILE --quick --only binding|generation|rl
      smoke      Train a small MLP on the libtorch binding and print progress (a quick health check).
                 --steps N (2000) --lr X (0.003) --seed N (1) --threads N (all cores)

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
        "run" => await RunCommand.RunAsync(options),
        "sft" => ModelCommands.Sft(options),
        "train-rm" => RewardModelCommand.Run(options),
        "tokenize" => ModelCommands.Tokenize(options),
        "generate" => ModelCommands.Generate(options),
        "init-model" => ModelCommands.InitModel(options),
        "smoke" => SmokeCommand.Run(options),
        "bench-generation" => GenerationBench.RunChild(options),
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
