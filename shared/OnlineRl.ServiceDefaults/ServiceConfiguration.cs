using System.Collections;

namespace OnlineRl.ServiceDefaults;

/// <summary>
/// Reads a configuration file with layered overrides: the file, then the environment, then dotted keys from the
/// command line (e.g. OnlineRl.Pipeline's <c>RunConfig.Load</c>, which applies defaults &lt; file &lt; <c>ONLINERL_*</c>
/// variables &lt; flags and validates).
/// </summary>
/// <typeparam name="T">The configuration.</typeparam>
/// <param name="path">The YAML/JSON config file, or null for defaults.</param>
/// <param name="flags">Dotted keys from the command line (e.g. "train.steps" -&gt; "10").</param>
/// <param name="environment">The environment variables to read.</param>
public delegate T ConfigLoader<out T>(string? path, IReadOnlyDictionary<string, string> flags, IReadOnlyDictionary<string, string> environment);

/// <summary>
/// Loads a service's configuration with the shared layering: defaults, then the config file, then the process's
/// environment variables, then <c>--section.key value</c> flags (flags win). The loader names the file, variable or
/// key of an error.
/// </summary>
public static class ServiceConfiguration
{
    /// <summary>Loads and validates the configuration with <paramref name="loader"/>.</summary>
    /// <param name="loader">Layers and validates (e.g. OnlineRl.Pipeline's <c>RunConfig.Load</c>).</param>
    /// <param name="path">The YAML/JSON config file, or null for defaults.</param>
    /// <param name="flags">Dotted keys from the command line (e.g. "train.steps" -&gt; "10").</param>
    /// <param name="environment">The environment (default: this process's variables).</param>
    public static T Load<T>(ConfigLoader<T> loader, string? path, IReadOnlyDictionary<string, string> flags, IReadOnlyDictionary<string, string>? environment = null) =>
        loader(path, flags, environment ?? ProcessEnvironment());

    /// <summary>This process's environment variables.</summary>
    public static Dictionary<string, string> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => e.Value as string ?? "", StringComparer.Ordinal);
}
