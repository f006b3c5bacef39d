using System.Globalization;

namespace OnlineRl.Cli;

/// <summary>
/// `--name value` and `--flag` options of one command. Every option a command reads is recorded, so
/// an unknown option (a typo) is reported instead of silently ignored.
/// </summary>
internal sealed class Options
{
    private readonly Dictionary<string, string?> values = new();
    private readonly HashSet<string> read = new();

    public Options(IEnumerable<string> args)
    {
        string? pending = null;
        foreach (var arg in args)
        {
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (pending is not null) values[pending] = null;
                var body = arg[2..];
                var eq = body.IndexOf('=');
                if (eq >= 0) { values[body[..eq]] = body[(eq + 1)..]; pending = null; }
                else pending = body;
            }
            else if (pending is not null) { values[pending] = arg; pending = null; }
            else throw new UsageException($"unexpected argument '{arg}'");
        }
        if (pending is not null) values[pending] = null;
    }

    public bool Flag(string name)
    {
        read.Add(name);
        return values.ContainsKey(name);
    }

    public string String(string name, string fallback)
    {
        read.Add(name);
        return values.TryGetValue(name, out var v) && v is not null ? v : fallback;
    }

    public int Int(string name, int fallback) => (int)Parse(name, fallback, s => long.Parse(s, CultureInfo.InvariantCulture));

    public long Long(string name, long fallback) => Parse(name, fallback, s => long.Parse(s, CultureInfo.InvariantCulture));

    public double Double(string name, double fallback) => Parse(name, fallback, s => double.Parse(s, CultureInfo.InvariantCulture));

    private T Parse<T>(string name, T fallback, Func<string, T> parse)
    {
        read.Add(name);
        if (!values.TryGetValue(name, out var text)) return fallback;
        if (text is null) throw new UsageException($"--{name} needs a value");
        try { return parse(text); }
        catch (FormatException) { throw new UsageException($"--{name}: '{text}' is not a valid {typeof(T).Name.ToLowerInvariant()}"); }
        catch (OverflowException) { throw new UsageException($"--{name}: '{text}' is out of range"); }
    }

    /// <summary>Options no part of the command has read yet, by name (for pass-through overrides).</summary>
    public IReadOnlyDictionary<string, string> Unread()
    {
        var unread = values.Where(kv => !read.Contains(kv.Key)).ToList();
        foreach (var (key, value) in unread)
        {
            if (value is null) throw new UsageException($"--{key} needs a value");
            read.Add(key);
        }
        return unread.ToDictionary(kv => kv.Key, kv => kv.Value!);
    }

    /// <summary>Fails on options that no part of the command read.</summary>
    public void RejectUnknown()
    {
        var unknown = values.Keys.Where(k => !read.Contains(k)).ToList();
        if (unknown.Count > 0) throw new UsageException($"unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}");
    }
}

/// <summary>A command-line mistake: printed with the usage text, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
