namespace OnlineRl.TorchSharp.Tests;

// Private generators: reproducible for a seed and independent of the global stream.
public class GeneratorTests
{
    [Fact]
    public void SameSeedSameDrawsAndTheGlobalStreamIsUntouched()
    {
        using var scope = torch.NewDisposeScope();
        var probabilities = torch.full(new long[] { 4, 50 }, 1.0 / 50);
        long[] Draw(long seed)
        {
            using var generator = new Generator(seed);
            return probabilities.multinomial(8, true, generator).data<long>();
        }
        torch.manual_seed(123);
        var expectedGlobal = torch.rand(new long[] { 5 }).data<float>();
        torch.manual_seed(123);
        var first = Draw(7);
        var afterPrivateDraws = torch.rand(new long[] { 5 }).data<float>();
        Assert.Equal(expectedGlobal, afterPrivateDraws);
        Assert.Equal(first, Draw(7));
        Assert.NotEqual(first, Draw(8));
    }

    [Fact]
    public void MatchesPyTorchGeneratorForTheSameSeed()
    {
        // torch.multinomial(torch.full((4, 50), 0.02), 8, True, generator=torch.Generator().manual_seed(7))
        var script = "import torch\nprint(' '.join(str(int(v)) for v in torch.multinomial(torch.full((4, 50), 0.02), 8, True, generator=torch.Generator().manual_seed(7)).flatten()))";
        var (code, output) = OnlineRl.TestSupport.PythonProcess.Run(new[] { "-c", script }, TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"python3-torch is missing or failed: {output}");
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(7);
        var ours = torch.full(new long[] { 4, 50 }, 0.02).multinomial(8, true, generator).data<long>();
        Assert.Equal(output.Trim(), string.Join(' ', ours));
    }

    [Fact]
    public void SavedStateRepeatsTheStreamForPrivateAndGlobalGenerators()
    {
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(11);
        torch.randperm(5, generator);
        var saved = generator.get_state();
        var expected = torch.randperm(20, generator).data<long>();
        torch.randperm(7, generator);
        generator.set_state(saved);
        Assert.Equal(expected, torch.randperm(20, generator).data<long>());

        torch.manual_seed(5);
        torch.rand(new long[] { 3 });
        var global = torch.get_rng_state();
        var expectedGlobal = torch.rand(new long[] { 4 }).data<float>();
        torch.rand(new long[] { 9 });
        torch.set_rng_state(global);
        Assert.Equal(expectedGlobal, torch.rand(new long[] { 4 }).data<float>());
    }

    [Fact]
    public void StateAndRandpermMatchPyTorch()
    {
        // The same state bytes (hashed) and permutation as torch.Generator().manual_seed(7), and a state
        // saved by PyTorch mid-stream continues identically here.
        var script = "import torch, hashlib\n" +
                     "g = torch.Generator().manual_seed(7)\n" +
                     "print(hashlib.sha256(g.get_state().numpy().tobytes()).hexdigest())\n" +
                     "print(' '.join(str(int(v)) for v in torch.randperm(12, generator=g)))\n" +
                     "print(hashlib.sha256(g.get_state().numpy().tobytes()).hexdigest())";
        var (code, output) = OnlineRl.TestSupport.PythonProcess.Run(new[] { "-c", script }, TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"python3-torch is missing or failed: {output}");
        var lines = output.Trim().Split('\n');
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(7);
        string Hash(Tensor state)
        {
            var bytes = new byte[state.nbytes()];
            state.CopyBytesTo(bytes);
            return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes)).ToLowerInvariant();
        }
        Assert.Equal(lines[0], Hash(generator.get_state()));
        Assert.Equal(lines[1], string.Join(' ', torch.randperm(12, generator).data<long>()));
        Assert.Equal(lines[2], Hash(generator.get_state()));
    }
}
