using System.Globalization;
using System.Text.RegularExpressions;

namespace OnlineRl.Rewards;

/// <summary>What a reward function sees of one completion.</summary>
/// <param name="Prompt">The prompt text.</param>
/// <param name="Completion">The generated text.</param>
/// <param name="Metadata">The task's metadata, e.g. "answer" for verifiable tasks.</param>
/// <param name="CompletionTokens">Number of generated tokens.</param>
public sealed record RewardInput(string Prompt, string Completion, IReadOnlyDictionary<string, string> Metadata, int CompletionTokens);

/// <summary>A rule (verifiable) reward: a pure function of the prompt, completion and task metadata.</summary>
public interface IRewardFunction
{
    /// <summary>Component name used in messages and metrics, e.g. "correct".</summary>
    string Name { get; }

    /// <summary>The reward of one completion.</summary>
    double Score(RewardInput input);
}

/// <summary>
/// 1 when the completion's final answer equals the metadata "answer" as a number, else 0. The final
/// answer is the number after the last "#### " (GSM8K's convention) or, when the completion has none,
/// the last number in the text (configurable). Thousands separators, "$" and a trailing "." are ignored.
/// </summary>
public sealed partial class NumericAnswerReward(bool requireHashMarker = false) : IRewardFunction
{
    /// <inheritdoc />
    public string Name => "correct";

    [GeneratedRegex(@"-?\$?\d[\d,]*(?:\.\d+)?")]
    private static partial Regex NumberPattern();

    /// <inheritdoc />
    public double Score(RewardInput input)
    {
        if (!input.Metadata.TryGetValue("answer", out var expectedText) || ParseNumber(expectedText) is not { } expected)
            throw new ArgumentException("task metadata field 'answer' is missing or not a number", nameof(input));
        return ExtractAnswer(input.Completion, requireHashMarker) is { } answer && answer == expected ? 1.0 : 0.0;
    }

    /// <summary>The final numeric answer of <paramref name="text"/>, or null.</summary>
    public static decimal? ExtractAnswer(string text, bool requireHashMarker = false)
    {
        var marker = text.LastIndexOf("####", StringComparison.Ordinal);
        if (marker >= 0)
        {
            var match = NumberPattern().Match(text, marker + 4);
            return match.Success ? ParseNumber(match.Value) : null;
        }
        if (requireHashMarker) return null;
        var all = NumberPattern().Matches(text);
        return all.Count == 0 ? null : ParseNumber(all[^1].Value);
    }

    /// <summary>Parses "1,234.50", "$12", "-3" to a decimal, or null.</summary>
    public static decimal? ParseNumber(string text)
    {
        var cleaned = text.Trim().Replace(",", "", StringComparison.Ordinal).Replace("$", "", StringComparison.Ordinal).TrimEnd('.');
        return decimal.TryParse(cleaned, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : null;
    }
}

/// <summary>1 when the completion, trimmed, equals the metadata "answer" exactly (e.g. "579" for "123+456=").</summary>
public sealed class ExactAnswerReward : IRewardFunction
{
    /// <inheritdoc />
    public string Name => "correct";

    /// <inheritdoc />
    public double Score(RewardInput input)
    {
        if (!input.Metadata.TryGetValue("answer", out var expected))
            throw new ArgumentException("task metadata field 'answer' is missing", nameof(input));
        return string.Equals(input.Completion.Trim(), expected.Trim(), StringComparison.Ordinal) ? 1.0 : 0.0;
    }
}

/// <summary>1 when the completion matches a regular expression (e.g. a required answer format), else 0.</summary>
public sealed class FormatReward : IRewardFunction
{
    private readonly Regex pattern;

    /// <summary>Rewards completions matching <paramref name="regex"/> (searched, not anchored, unless the pattern anchors).</summary>
    public FormatReward(string regex, string name = "format")
    {
        pattern = new Regex(regex, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        Name = name;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public double Score(RewardInput input)
    {
        try
        {
            return pattern.IsMatch(input.Completion) ? 1.0 : 0.0;
        }
        catch (RegexMatchTimeoutException)
        {
            return 0.0;
        }
    }
}

/// <summary>
/// -min(1, max(0, tokens - target) / (limit - target)): no penalty up to <c>target</c> tokens, then a
/// linear penalty reaching -1 at <c>limit</c> (DAPO's soft overlong punishment has this shape).
/// </summary>
public sealed class LengthPenalty : IRewardFunction
{
    private readonly int target;
    private readonly int limit;

    /// <summary>Creates the penalty; <paramref name="limit"/> must exceed <paramref name="target"/>.</summary>
    public LengthPenalty(int target, int limit)
    {
        if (target < 0 || limit <= target) throw new ArgumentException($"need 0 <= target ({target}) < limit ({limit})");
        this.target = target;
        this.limit = limit;
    }

    /// <inheritdoc />
    public string Name => "length";

    /// <inheritdoc />
    public double Score(RewardInput input) => -Math.Min(1.0, Math.Max(0, input.CompletionTokens - target) / (double)(limit - target));
}

/// <summary>A weighted sum of reward components; each component's value is reported too.</summary>
public sealed class WeightedReward
{
    private readonly IReadOnlyList<(IRewardFunction Function, double Weight)> parts;

    /// <summary>Combines <paramref name="parts"/>; component names must be distinct.</summary>
    public WeightedReward(IReadOnlyList<(IRewardFunction Function, double Weight)> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("a reward needs at least one component");
        var duplicate = parts.GroupBy(p => p.Function.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"reward component '{duplicate.Key}' appears twice");
        this.parts = parts;
    }

    /// <summary>Component names in order.</summary>
    public IEnumerable<string> ComponentNames => parts.Select(p => p.Function.Name);

    /// <summary>The total and each component's unweighted value.</summary>
    public (double Total, IReadOnlyDictionary<string, double> Components) Score(RewardInput input)
    {
        var components = new Dictionary<string, double>();
        var total = 0.0;
        foreach (var (function, weight) in parts)
        {
            var value = function.Score(input);
            components[function.Name] = value;
            total += weight * value;
        }
        return (total, components);
    }
}
