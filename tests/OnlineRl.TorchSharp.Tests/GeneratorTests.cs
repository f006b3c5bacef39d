using OnlineRl.TestSupport;

namespace OnlineRl.TorchSharp.Tests;

// Private generators (the sampler's and the learner's): reproducible for a seed, independent of the global
// stream, and the same streams as PyTorch's torch.Generator.
public class GeneratorTests
{
    [Fact]
    public void Same_seed_same_draws_and_the_global_stream_is_untouched()
    {
        using var scope = torch.NewDisposeScope();
        var probabilities = torch.full(4, 50, 1.0 / 50);
        long[] Draw(ulong seed)
        {
            using var generator = new Generator(seed);
            return probabilities.multinomial(8, true, generator).data<long>().ToArray();
        }
        torch.manual_seed(123);
        var expectedGlobal = torch.rand(5).data<float>().ToArray();
        torch.manual_seed(123);
        var first = Draw(7);
        Assert.Equal(expectedGlobal, torch.rand(5).data<float>().ToArray());
        Assert.Equal(first, Draw(7));
        Assert.NotEqual(first, Draw(8));
    }

    [Fact]
    public void multinomial_with_replacement_matches_PyTorch_for_the_same_seed()
    {
        const string script = "import torch\nprint(' '.join(str(int(v)) for v in torch.multinomial(torch.full((4, 50), 0.02), 8, True, generator=torch.Generator().manual_seed(7)).flatten()))";
        var (code, output) = PythonProcess.Run(["-c", script], TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"python3-torch is missing or failed: {output}");
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(7);
        var ours = torch.full(4, 50, 0.02).multinomial(8, true, generator).data<long>().ToArray();
        Assert.Equal(output.Trim(), string.Join(' ', ours));
    }

    [Fact]
    public void Saved_state_repeats_the_stream_for_private_and_global_generators()
    {
        // Learner checkpoints keep its generator's state and the global one (LearnerCheckpoint).
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(11);
        torch.randperm(5, generator: generator);
        var saved = generator.get_state();
        var expected = torch.randperm(20, generator: generator).data<long>().ToArray();
        torch.randperm(7, generator: generator);
        generator.set_state(saved);
        Assert.Equal(expected, torch.randperm(20, generator: generator).data<long>().ToArray());

        torch.manual_seed(5);
        torch.rand(3);
        var global = torch.get_rng_state();
        var expectedGlobal = torch.rand(4).data<float>().ToArray();
        torch.rand(9);
        torch.set_rng_state(global);
        Assert.Equal(expectedGlobal, torch.rand(4).data<float>().ToArray());
    }

    [Fact]
    public void State_and_randperm_match_PyTorch()
    {
        // The same state bytes (hashed) and permutation as torch.Generator().manual_seed(7): a state saved by
        // PyTorch mid-stream continues identically here.
        const string script = "import torch, hashlib\n" +
                              "g = torch.Generator().manual_seed(7)\n" +
                              "print(hashlib.sha256(g.get_state().numpy().tobytes()).hexdigest())\n" +
                              "print(' '.join(str(int(v)) for v in torch.randperm(12, generator=g)))\n" +
                              "print(hashlib.sha256(g.get_state().numpy().tobytes()).hexdigest())";
        var (code, output) = PythonProcess.Run(["-c", script], TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"python3-torch is missing or failed: {output}");
        var lines = output.Trim().Split('\n');
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(7);
        static string Hash(Tensor state) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(state.bytes)).ToLowerInvariant();
        Assert.Equal(lines[0], Hash(generator.get_state()));
        Assert.Equal(lines[1], string.Join(' ', torch.randperm(12, generator: generator).data<long>().ToArray()));
        Assert.Equal(lines[2], Hash(generator.get_state()));
    }
}
