using System.Collections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using OnlineRl.Pipeline;

namespace OnlineRl.Deploy.Tests;

// Configuration layering (defaults < file < ONLINERL_* environment < flags) and the logging switch.
public sealed class ServiceConfigurationTests
{
    [Fact]
    public void Environment_overrides_the_file_and_flags_override_the_environment()
    {
        var file = Path.Combine(Path.GetTempPath(), $"onlinerl-config-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, "run_id: from-file\ntrain:\n  steps: 5\n  eval_every: 3\nsampling:\n  group_size: 4\n");
        try
        {
            var environment = new Dictionary<string, string>
            {
                ["ONLINERL_TRAIN__STEPS"] = "7", ["ONLINERL_SAMPLING__GROUP_SIZE"] = "6", ["ONLINERL_RUN_ID"] = "from-env", ["PATH"] = "/usr/bin",
            };
            var config = ServiceConfiguration.Load(RunConfig.Load, file, new Dictionary<string, string> { ["sampling.group_size"] = "8" }, environment);
            Assert.Equal("from-env", config.RunId);
            Assert.Equal(7, config.Train.Steps);           // env over file
            Assert.Equal(3, config.Train.EvalEvery);       // file over defaults
            Assert.Equal(8, config.Sampling.GroupSize);    // flag over env
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_bad_environment_value_names_the_key()
    {
        var error = Assert.Throws<ConfigException>(() =>
            ServiceConfiguration.Load(RunConfig.Load, null, new Dictionary<string, string>(), new Dictionary<string, string> { ["ONLINERL_SAMPLING__GROUP_SIZE"] = "1" }));
        Assert.Contains("sampling.group_size", error.Message);
        var unknown = Assert.Throws<ConfigException>(() =>
            ServiceConfiguration.Load(RunConfig.Load, null, new Dictionary<string, string>(), new Dictionary<string, string> { ["ONLINERL_TRAIN__STEPZ"] = "1" }));
        Assert.Contains("stepz", unknown.Message);
        var malformed = Assert.Throws<ConfigException>(() => RunConfig.EnvironmentOverrides(new Dictionary<string, string> { ["ONLINERL_TRAIN____STEPS"] = "1" }));
        Assert.Contains("ONLINERL_TRAIN____STEPS", malformed.Message);
    }

    [Theory]
    [InlineData("json")]
    [InlineData("simple")]
    public void Logging_format_follows_the_standard_console_formatter_setting(string formatter)
    {
        var output = new StringWriter();
        var original = Console.Out;
        Console.SetOut(output);
        try
        {
            var configuration = new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Console:FormatterName"] = formatter }).Build();
            using (var factory = ServiceLogging.CreateLoggerFactory(configuration))
                factory.CreateLogger("generator").LogInformation("loaded weights version {Version}", 3);
        }
        finally
        {
            Console.SetOut(original);
        }
        var line = output.ToString().Trim();
        Assert.Contains("loaded weights version 3", line);
        if (formatter == "json")
        {
            using var json = System.Text.Json.JsonDocument.Parse(line);
            Assert.Equal("generator", json.RootElement.GetProperty("Category").GetString());
            Assert.Equal(3, json.RootElement.GetProperty("State").GetProperty("Version").GetInt32());
        }
        else
        {
            Assert.DoesNotContain("{", line);
            Assert.Single(output.ToString().Trim().Split('\n'));
        }
    }
}
