using System.Diagnostics;
using OnlineRl.Model;
using TorchSharp;
using static TorchSharp.torch;
using OnlineRl.Training;
using TorchSharp.Modules;

namespace OnlineRl.Cli;

/// <summary>
/// Fits y = sin(3x) * x on [-1, 1] with a two-layer MLP, AdamW and a warm-up + cosine schedule:
/// exercises tensors, autograd, modules, the optimizer and dispose scopes end to end.
/// </summary>
internal static class SmokeCommand
{
    private sealed class Mlp : nn.Module<Tensor, Tensor>
    {
        private readonly Linear hidden;
        private readonly Linear output;

        public Mlp(int width) : base(nameof(Mlp))
        {
            register_module("hidden", hidden = nn.Linear(1, width));
            register_module("output", output = nn.Linear(width, 1));
        }

        public override Tensor forward(Tensor x) => output.forward(hidden.forward(x).tanh());
    }

    public static int Run(Options options)
    {
        var steps = options.Int("steps", 2000);
        var lr = options.Double("lr", 3e-3);
        var seed = options.Long("seed", 1);
        var threads = options.Int("threads", 0);
        options.RejectUnknown();
        if (steps < 1) throw new UsageException("--steps must be at least 1");
        if (threads > 0) torch.set_num_threads(threads);

        torch.manual_seed(seed);
        Console.WriteLine($"TorchSharp {torch.__version__}, {torch.get_num_threads()} threads, CUDA available: {torch.cuda.is_available()}");
        using var model = new Mlp(64);
        using var optimizer = new ScheduledAdamW(model.parameters(), new WarmupCosineSchedule(lr, WarmupSteps: Math.Max(1, steps / 20), TotalSteps: steps), weightDecay: 0);
        using var x = torch.linspace(-1, 1, 256).unsqueeze(1);
        using var y = x.Times(3.0).sin() * x;

        var clock = Stopwatch.StartNew();
        double firstLoss = double.NaN, loss = double.NaN;
        for (var step = 0; step < steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            var rate = optimizer.LearningRate;
            optimizer.ZeroGrad();
            var lossTensor = torch.nn.functional.mse_loss(model.forward(x), y);
            lossTensor.backward();
            optimizer.Step();
            loss = lossTensor.ItemAsDouble();
            if (step == 0) firstLoss = loss;
            if (step % Math.Max(1, steps / 10) == 0 || step == steps - 1)
                Console.WriteLine($"step {step + 1,6}/{steps}  loss {loss:E3}  lr {rate:E2}  {clock.Elapsed.TotalSeconds,6:F1}s");
        }
        var improved = loss < firstLoss / 10;
        Console.WriteLine($"final loss {loss:E3} (first {firstLoss:E3}); live tensors {DisposeScopeManager.Statistics.ThreadTotalLiveCount}; " +
                          (improved ? "OK: the model learned the function." : "FAILED: the loss did not drop tenfold."));
        return improved ? 0 : 1;
    }
}
