using OnlineRl.Cli;

const string Usage = """
    onlinerl: online RL post-training for language models.

    Usage: onlinerl <command> [options]

    Commands:
      run        The all-in-one online RL run: feeder, generator, scorer and learner in one process on the
                 in-process bus. --config FILE (YAML or JSON), then any config key as a flag overriding it,
                 e.g. --algorithm.name ppo --train.steps 50 --sampling.group_size 8. Defaults: GRPO on the
                 synthetic "a+b=" task, a small model warm-started by SFT (see configs/grpo-addition.yaml).
      feeder | generator | scorer | learner
                 One service of a run as its own process: --config FILE plus --section.key overrides, and
                 ONLINERL_SECTION__KEY environment variables (flags > environment > file). Needs shared
                 transports: --transport.bus redis://HOST:PORT|kafka://HOST:PORT --transport.weights
                 redis://HOST:PORT; --service.id NAME. The learner resumes from --train.state_dir; every
                 service appends to --train.ledger_dir. SIGTERM/Ctrl-C stop gracefully.
      ledger     Check a run's per-sample ledger: --dir DIR. Prints, per run, prompts published, trained,
                 dropped stale, trained twice and missing; exit code 1 when anything is wrong.
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
      smoke      Train a small MLP on the libtorch binding and print progress (a quick health check).
                 --steps N (2000) --lr X (0.003) --seed N (1) --threads N (all cores)

      kafka-mock librdkafka's mock Kafka cluster in this process for other processes to use: prints its bootstrap
                 address on the first line and runs until stdin closes or SIGTERM. Each stdin line is a fault command,
                 answered "ok" or "error: ..." on stdout: down B | up B | leader TOPIC PARTITION B | coordinator GROUP B |
                 errors API ERROR... (e.g. errors produce NotLeaderForPartition RequestTimedOut) | clear API | rtt B MS.
                 --brokers N (1) --partitions P (4, for the pipeline's topics) --rebalance-delay-ms MS (3000)
                 --ignore-stdin (no commands; stop on signals only)
      soak       The distributed run (feeder, 2 generators, scorer, learner as processes) on loopback under periodic
                 faults: Kafka broker down/up, leader changes, request errors, kill -9 of a generator (a new one joins),
                 a scorer joining/killed, kill -9 + restart of the feeder and of the learner (from its checkpoint),
                 redis-server kill -9 + restart. Samples RSS and open handles of every process and Redis's keys; ends by
                 training exactly what was fed. Writes soak-report.md (verdict, ledger, throughput and lag over time,
                 memory/handle trends) and soak-samples.csv; exit code 0 when every check held.
                 --minutes M (20) --bus kafka|redis (kafka) --out DIR (runs/soak, must be new or empty)
                 --fault-every-seconds S (minutes x 3, 10..120) --sample-seconds S (60) --prompts-per-step N (8)

    Benchmarks and the comparison with a plain PyTorch trainer are the onlinerl-bench tool (services/OnlineRl.Bench).

    Environment: ONLINERL_NUM_THREADS sets libtorch's thread count (default: all cores).
    """;

return await CommandHelp.RunAsync("onlinerl", Usage, args, async (command, options) => command switch
{
    "run" => await RunCommand.RunAsync(options),
    "feeder" or "generator" or "scorer" or "learner" => await ServiceCommands.RunAsync(command, options),
    "ledger" => ServiceCommands.Ledger(options),
    "sft" => ModelCommands.Sft(options),
    "train-rm" => RewardModelCommand.Run(options),
    "tokenize" => ModelCommands.Tokenize(options),
    "generate" => ModelCommands.Generate(options),
    "init-model" => ModelCommands.InitModel(options),
    "smoke" => SmokeCommand.Run(options),
    "kafka-mock" => await KafkaMockCommand.RunAsync(options),
    "soak" => await SoakCommand.RunAsync(options),
    "bench" or "bench-redis" or "bench-kafka" or "compare-reference" =>
        throw new UsageException($"'{command}' is a command of onlinerl-bench now: dotnet run -c Release --project services/OnlineRl.Bench -- {command}"),
    _ => throw new UsageException($"unknown command '{command}'"),
});
