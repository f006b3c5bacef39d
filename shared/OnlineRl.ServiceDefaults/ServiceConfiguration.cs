using System.Collections;
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
    public static RunConfig Load(string? path, IReadOnlyDictionary<string, string> flags, IReadOnlyDictionary<string, string>? environment = null) =>
        RunConfig.Load(path, flags, environment ?? ProcessEnvironment());

    /// <summary>This process's environment variables.</summary>
    public static Dictionary<string, string> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => e.Value as string ?? "", StringComparer.Ordinal);
}
