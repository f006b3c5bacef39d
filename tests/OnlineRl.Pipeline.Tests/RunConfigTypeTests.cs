namespace OnlineRl.Pipeline.Tests;

// Values of the wrong type (from a flag or a file) are errors that name the key, like range errors.
public class RunConfigTypeTests
{
    [Theory]
    [InlineData("train.steps", "many")]
    [InlineData("sampling.temperature", "warm")]
    [InlineData("train.overlap", "maybe")]
    public void WrongTypesNameTheKey(string key, string value)
    {
        var error = Assert.Throws<ConfigException>(() => RunConfig.Load(null, new Dictionary<string, string> { [key] = value }));
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void NumbersInAFileAreReadAsNumbers()
    {
        var path = Path.Combine(Path.GetTempPath(), $"onlinerl-config-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "algorithm:\n  learning_rate: 1e-4\n  name: 'ppo'\ntrain:\n  steps: 7\n");
        try
        {
            var config = RunConfig.Load(path);
            Assert.Equal(1e-4, config.Algorithm.LearningRate);
            Assert.Equal(OnlineRl.Algorithms.AlgorithmKind.Ppo, config.Algorithm.Name);
            Assert.Equal(7, config.Train.Steps);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
