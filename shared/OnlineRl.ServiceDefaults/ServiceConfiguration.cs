using OnlineRl.Pipeline;

namespace OnlineRl.ServiceDefaults;

/// <summary>
/// Loads a service's <see cref="RunConfig"/> with the shared layering: defaults, then the config file, then
/// <c>ONLINERL_*</c> environment variables, then <c>--section.key value</c> flags (flags win). Errors are
/// <see cref="ConfigException"/>s naming the file, variable or key.
/// </summary>
public static class ServiceConfiguration
{
    /// <summary>Loads and validates the configuration.</summary>
    /// <param name="path">The YAML/JSON config file, or null for defaults.</param>
    /// <param name="flags">Dotted keys from the command line (e.g. "train.steps" -&gt; "10").</param>
    /// <param name="environment">The environment (default: this process's variables).</param>
    public static RunConfig Load(string? path, IReadOnlyDictionary<string, string> flags, System.Collections.IDictionary? environment = null)
    {
        var overrides = RunConfig.EnvironmentOverrides(environment ?? Environment.GetEnvironmentVariables());
        foreach (var (key, value) in flags) overrides[key] = value;
        return RunConfig.Load(path, overrides);
    }
}
