using System.Globalization;
using System.Text;

namespace OnlineRl.Deploy.Tests;

/// <summary>One sample line of the Prometheus text exposition format.</summary>
public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>A metric family: its # TYPE and # HELP and its samples.</summary>
public sealed record Family(string Name, string Type, string? Help, List<Sample> Samples);

/// <summary>
/// A strict parser of the Prometheus text format 0.0.4 (what /metrics serves to a plain GET): comment
/// lines, sample lines with escaped label values, and the rule that every sample belongs to the family
/// declared by the last # TYPE line (histograms: name_bucket/_sum/_count; counters may end in _total).
/// Throws <see cref="FormatException"/> naming the line on anything else.
/// </summary>
public static class PrometheusText
{
    public static Dictionary<string, Family> Parse(string text)
    {
        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        var helps = new Dictionary<string, string>(StringComparer.Ordinal);
        Family? current = null;
        var lineNumber = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var rest = line["# HELP ".Length..];
                var space = rest.IndexOf(' ');
                var name = space < 0 ? rest : rest[..space];
                helps[name] = space < 0 ? "" : UnescapeHelp(rest[(space + 1)..], lineNumber);
                continue;
            }
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line["# TYPE ".Length..].Split(' ');
                if (parts.Length != 2 || parts[1] is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                    throw new FormatException($"line {lineNumber}: bad TYPE line '{line}'");
                if (families.ContainsKey(parts[0])) throw new FormatException($"line {lineNumber}: second TYPE line for {parts[0]}");
                current = new Family(parts[0], parts[1], null, []);
                families[parts[0]] = current;
                continue;
            }
            if (line.StartsWith('#')) continue;
            var sample = ParseSample(line, lineNumber);
            if (current is null || !BelongsTo(sample.Name, current))
                throw new FormatException($"line {lineNumber}: sample {sample.Name} outside its family's TYPE block");
            current.Samples.Add(sample);
        }
        return families.ToDictionary(kv => kv.Key, kv => kv.Value with { Help = helps.GetValueOrDefault(kv.Key) }, StringComparer.Ordinal);
    }

    private static bool BelongsTo(string sample, Family family) => family.Type switch
    {
        "histogram" => sample == family.Name + "_bucket" || sample == family.Name + "_sum" || sample == family.Name + "_count",
        "counter" => sample == family.Name || sample == family.Name + "_total",
        _ => sample == family.Name,
    };

    private static Sample ParseSample(string line, int lineNumber)
    {
        var i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or ':')) i++;
        var name = line[..i];
        if (name.Length == 0 || char.IsAsciiDigit(name[0])) throw new FormatException($"line {lineNumber}: bad metric name in '{line}'");
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var start = i;
                while (char.IsAsciiLetterOrDigit(line[i]) || line[i] == '_') i++;
                var label = line[start..i];
                if (label.Length == 0 || line[i] != '=' || line[i + 1] != '"') throw new FormatException($"line {lineNumber}: bad label at column {i}");
                i += 2;
                var value = new StringBuilder();
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        value.Append(line[i + 1] switch
                        {
                            '\\' => '\\', '"' => '"', 'n' => '\n',
                            _ => throw new FormatException($"line {lineNumber}: bad escape \\{line[i + 1]}"),
                        });
                        i += 2;
                    }
                    else value.Append(line[i++]);
                }
                i++;
                if (!labels.TryAdd(label, value.ToString())) throw new FormatException($"line {lineNumber}: label {label} twice");
                if (line[i] == ',') i++;
            }
            i++;
        }
        if (i >= line.Length || line[i] != ' ') throw new FormatException($"line {lineNumber}: no space before the value in '{line}'");
        var fields = line[(i + 1)..].Split(' ');
        if (fields.Length is < 1 or > 2) throw new FormatException($"line {lineNumber}: expected value [timestamp] in '{line}'");
        return new Sample(name, labels, ParseValue(fields[0], lineNumber));
    }

    private static double ParseValue(string text, int lineNumber) => text switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
            : throw new FormatException($"line {lineNumber}: bad value '{text}'"),
    };

    private static string UnescapeHelp(string text, int lineNumber)
    {
        var result = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\') { result.Append(text[i]); continue; }
            result.Append(text[++i] switch { '\\' => '\\', 'n' => '\n', _ => throw new FormatException($"line {lineNumber}: bad HELP escape") });
        }
        return result.ToString();
    }
}
