using System.Diagnostics;
using OnlineRl.Torch;
using OnlineRl.Torch.NN;
using OnlineRl.Torch.Optim;

namespace OnlineRl.Cli;

/// <summary>
/// Fits y = sin(3x) * x on [-1, 1] with a two-layer MLP, AdamW and a warm-up + cosine schedule:
/// exercises tensors, autograd, modules, the optimizer and dispose scopes end to end.
/// </summary>
internal static class SmokeCommand
{
    private sealed class Mlp : Module<Tensor, Tensor>
    {
        private readonly Linear hidden;
        private readonly Linear output;

        public Mlp(int width)
        {
            hidden = RegisterModule("hidden", new Linear(1, width));
            output = RegisterModule("output", new Linear(width, 1));
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
        Console.WriteLine($"libtorch {torch.version}, {torch.get_num_threads()} threads, CUDA available: {torch.cuda.is_available()}");
        using var model = new Mlp(64);
        using var optimizer = new AdamW(model.parameters(), lr: lr, weight_decay: 0);
        var schedule = new WarmupCosineSchedule(lr, WarmupSteps: Math.Max(1, steps / 20), TotalSteps: steps);
        using var x = torch.linspace(-1, 1, 256).unsqueeze(1);
        using var y = (x * 3.0).sin() * x;

        var clock = Stopwatch.StartNew();
        double firstLoss = double.NaN, loss = double.NaN;
        for (var step = 0; step < steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            schedule.Apply(optimizer);
            optimizer.zero_grad();
            var lossTensor = torch.nn.functional.mse_loss(model.forward(x), y);
            lossTensor.backward();
            optimizer.step();
            loss = lossTensor.ToDouble();
            if (step == 0) firstLoss = loss;
            if (step % Math.Max(1, steps / 10) == 0 || step == steps - 1)
                Console.WriteLine($"step {step + 1,6}/{steps}  loss {loss:E3}  lr {optimizer.LearningRate:E2}  {clock.Elapsed.TotalSeconds,6:F1}s");
        }
        var improved = loss < firstLoss / 10;
        Console.WriteLine($"final loss {loss:E3} (first {firstLoss:E3}); live tensors {torch.LiveTensorCount}; " +
                          (improved ? "OK: the model learned the function." : "FAILED: the loss did not drop tenfold."));
        return improved ? 0 : 1;
    }
}
