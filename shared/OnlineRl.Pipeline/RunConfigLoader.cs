using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using YamlDotNet.RepresentationModel;

namespace OnlineRl.Pipeline;

// Reading a configuration: YAML or JSON file, then environment variables, then flags, into the schema of RunConfig.cs.
public sealed partial record RunConfig
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
        Converters = { ConfigNames.Algorithm, ConfigNames.KlEstimator, ConfigNames.LossAggregation, ConfigNames.DpoLoss },
    };

    /// <summary>
    /// Reads <paramref name="path"/> (YAML or JSON; null: defaults), applies <paramref name="overrides"/>
    /// ("algorithm.name" -&gt; "ppo"), and validates. Errors name the file and the key.
    /// </summary>
    public static RunConfig Load(string? path, IReadOnlyDictionary<string, string>? overrides = null) => Load(path, overrides, null);

    /// <summary>
    /// Like <see cref="Load(string?, IReadOnlyDictionary{string, string}?)"/> with environment variables between the
    /// file and the flags (precedence: flags, environment, file, defaults). <c>ONLINERL_TRANSPORT__BUS</c> sets
    /// <c>transport.bus</c>: the name after the prefix, lower-cased, with double underscores as dots. Variables
    /// naming no section or top-level key (e.g. ONLINERL_NUM_THREADS) are not configuration and are ignored.
    /// </summary>
    public static RunConfig Load(string? path, IReadOnlyDictionary<string, string>? overrides, IReadOnlyDictionary<string, string>? environment)
    {
        var merged = new Dictionary<string, string>();
        foreach (var (key, value) in EnvironmentOverrides(environment ?? new Dictionary<string, string>())) merged[key] = value;
        foreach (var (key, value) in overrides ?? new Dictionary<string, string>()) merged[key] = value;
        return LoadMerged(path, merged);
    }

    /// <summary>Prefix of the environment variables that set configuration keys.</summary>
    public const string EnvironmentPrefix = "ONLINERL_";

    /// <summary>
    /// The configuration keys set by environment variables: <c>ONLINERL_</c> + the dotted key upper-cased with
    /// dots as double underscores (<c>ONLINERL_TRANSPORT__BUS</c> sets <c>transport.bus</c>). Variables whose
    /// first part names no section or top-level key (e.g. ONLINERL_NUM_THREADS) are not configuration and are ignored.
    /// </summary>
    /// <exception cref="ConfigException">A variable has an empty part (e.g. ONLINERL_TRAIN____STEPS).</exception>
    public static Dictionary<string, string> EnvironmentOverrides(IReadOnlyDictionary<string, string> environment)
    {
        var topLevel = typeof(RunConfig).GetProperties().Select(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name)).ToHashSet();
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in environment)
        {
            if (!name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal)) continue;
            var key = name[EnvironmentPrefix.Length..].ToLowerInvariant().Replace("__", ".", StringComparison.Ordinal);
            if (!topLevel.Contains(key.Split('.')[0])) continue;
            if (key.Split('.').Any(part => part.Length == 0))
                throw new ConfigException($"environment variable {name}: not a configuration key (expected e.g. ONLINERL_TRANSPORT__BUS)");
            keys[key] = value;
        }
        return keys;
    }

    private static RunConfig LoadMerged(string? path, IReadOnlyDictionary<string, string> overrides)
    {
        var root = new JsonObject();
        if (path is not null)
        {
            if (!File.Exists(path)) throw new ConfigException($"config file not found: {path}");
            try
            {
                var text = File.ReadAllText(path);
                root = text.TrimStart().StartsWith('{') ? JsonNode.Parse(text)!.AsObject() : YamlToJson(text);
            }
            catch (Exception e) when (e is JsonException or YamlDotNet.Core.YamlException or InvalidOperationException)
            {
                throw new ConfigException($"{path}: cannot parse ({e.Message})");
            }
        }
        foreach (var (key, value) in overrides) Set(root, key, value);
        StringifyKafkaSettings(root);
        RunConfig config;
        try
        {
            config = root.Deserialize<RunConfig>(Json) ?? new RunConfig();
        }
        catch (JsonException e)
        {
            var where = string.IsNullOrEmpty(e.Path) ? "" : $" at '{e.Path.TrimStart('$', '.')}'";
            throw new ConfigException($"{path ?? "config"}: {e.Message.Split(" Path:")[0]}{where}");
        }
        return config.Validate();
    }

    /// <summary>The configuration as YAML-compatible JSON text (what the run actually used), secrets redacted (see <see cref="Redacted"/>).</summary>
    public string ToJson() => JsonSerializer.Serialize(Redacted(), Json);

    /// <summary>
    /// This configuration with its secrets replaced by <c>***</c>, for reports and logs: the password of a Redis
    /// address and every Kafka setting that holds a credential or key (<see cref="IsSecretKafkaSetting"/>).
    /// </summary>
    public RunConfig Redacted() => this with
    {
        Transport = Transport with
        {
            Bus = TransportUris.Describe(Transport.Bus),
            Weights = TransportUris.Describe(Transport.Weights),
            Kafka = Transport.Kafka.ToDictionary(kv => kv.Key, kv => IsSecretKafkaSetting(kv.Key) ? "***" : kv.Value),
        },
    };

    /// <summary>
    /// Whether a librdkafka setting holds a secret: passwords, user names, client secrets, private keys and PEM
    /// contents (the properties librdkafka itself redacts in its logs, and any like them).
    /// </summary>
    public static bool IsSecretKafkaSetting(string name) =>
        new[] { "password", "secret", "username", "pem", "private", "oauthbearer.config", "ssl_key", "jaas", "token" }
            .Any(part => name.Contains(part, StringComparison.OrdinalIgnoreCase));

    private const string KafkaKey = "transport.kafka.";

    private static void Set(JsonObject root, string dottedKey, string value)
    {
        // Kafka setting names contain dots themselves ("security.protocol"): the rest of the key is one name.
        var parts = dottedKey.StartsWith(KafkaKey, StringComparison.Ordinal)
            ? new[] { "transport", "kafka", dottedKey[KafkaKey.Length..] }
            : dottedKey.Split('.');
        var node = root;
        foreach (var part in parts[..^1])
        {
            if (node[part] is not JsonObject child)
            {
                child = new JsonObject();
                node[part] = child;
            }
            node = child;
        }
        node[parts[^1]] = Scalar(value);
    }

    /// <summary>Kafka settings are strings for librdkafka, whatever YAML made of them (true, 1000).</summary>
    private static void StringifyKafkaSettings(JsonObject root)
    {
        if (root["transport"] is not JsonObject transport || transport["kafka"] is not JsonObject kafka) return;
        foreach (var (name, value) in kafka.ToList())
        {
            if (value is JsonValue scalar && scalar.GetValueKind() != JsonValueKind.String)
                kafka[name] = JsonValue.Create(scalar.GetValueKind() switch
                {
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => scalar.ToJsonString(),
                });
        }
    }

    private static JsonNode Scalar(string text)
    {
        if (bool.TryParse(text, out var b)) return JsonValue.Create(b);
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
        // NaN and infinities stay text: JSON has no such numbers, and no key accepts them.
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)) return JsonValue.Create(d);
        return JsonValue.Create(text);
    }

    private static JsonObject YamlToJson(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        if (stream.Documents.Count == 0) return new JsonObject();
        return Convert(stream.Documents[0].RootNode) as JsonObject ?? throw new InvalidOperationException("the top level must be a mapping");

        static JsonNode? Convert(YamlNode node) => node switch
        {
            YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
                KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", Convert(kv.Value)))),
            YamlSequenceNode list => new JsonArray(list.Children.Select(Convert).ToArray()),
            YamlScalarNode scalar when scalar.Style is YamlDotNet.Core.ScalarStyle.SingleQuoted or YamlDotNet.Core.ScalarStyle.DoubleQuoted
                => JsonValue.Create(scalar.Value),
            YamlScalarNode scalar => scalar.Value is null or "~" or "null" ? null : Scalar(scalar.Value),
            _ => null,
        };
    }
}
