namespace OnlineRl.Torch.Tests;

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
}
