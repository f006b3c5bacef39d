using System.Globalization;
using System.Text.Json;

namespace OnlineRl.Rewards;

/// <summary>One prompt with what is needed to verify its completions.</summary>
/// <param name="Id">Stable id (dataset name + index).</param>
/// <param name="Prompt">The prompt text.</param>
/// <param name="Answer">The reference answer.</param>
/// <param name="Index">Position in the source.</param>
public sealed record TaskItem(string Id, string Prompt, string Answer, long Index);

/// <summary>
/// The synthetic verifiable task "a+b=" with operands of 1..maxDigits digits; the completion must be
/// the decimal sum. Item i of a seed is always the same problem, so held-out sets are fixed.
/// </summary>
public sealed class AdditionTask(int maxDigits = 3, long seed = 0)
{
    /// <summary>Characters the task uses (for a character-level tokenizer).</summary>
    public const string Alphabet = "0123456789+=";

    /// <summary>Problem number <paramref name="index"/>.</summary>
    public TaskItem Item(long index)
    {
        // HashCode.Combine is randomised per process; a fixed mix keeps item i the same in every process.
        var random = new Random(Mix(seed, index, maxDigits));
        long Operand()
        {
            var digits = random.Next(1, maxDigits + 1);
            return random.NextInt64((long)Math.Pow(10, digits - 1) - (digits == 1 ? 1 : 0), (long)Math.Pow(10, digits));
        }
        long a = Operand(), b = Operand();
        return new TaskItem($"add-{seed}-{index}", $"{a}+{b}=", (a + b).ToString(CultureInfo.InvariantCulture), index);
    }

    /// <summary>SplitMix64 finaliser over the three inputs, folded to a non-negative int seed.</summary>
    private static int Mix(long seed, long index, int digits)
    {
        var x = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index * 0xBF58476D1CE4E5B9UL + (ulong)digits);
        x = unchecked((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL);
        x = unchecked((x ^ (x >> 27)) * 0x94D049BB133111EBUL);
        x ^= x >> 31;
        return (int)(x & 0x7FFFFFFF);
    }

    /// <summary>Problems start .. start+count-1.</summary>
    public IEnumerable<TaskItem> Items(long start, int count)
    {
        for (var i = 0; i < count; i++) yield return Item(start + i);
    }
}

/// <summary>A bad line in a JSONL dataset.</summary>
/// <param name="Path">The file.</param>
/// <param name="Line">1-based line number.</param>
/// <param name="Reason">What is wrong.</param>
public sealed record DatasetError(string Path, long Line, string Reason)
{
    /// <inheritdoc />
    public override string ToString() => $"{Path}:{Line}: {Reason}";
}

/// <summary>
/// Reads prompt/answer JSON lines, e.g. GSM8K ({"question": ..., "answer": "... #### 72"}): the prompt
/// comes from <c>promptField</c>, the answer from <c>answerField</c> (for GSM8K, the number after "####").
/// Bad lines are reported with file and line and skipped, or rejected when <c>strict</c>.
/// </summary>
public sealed class JsonlDataset(string path, string promptField = "question", string answerField = "answer", bool strict = false)
{
    /// <summary>Lines that could not be used (when not strict).</summary>
    public List<DatasetError> Errors { get; } = new();

    /// <summary>Reads every usable item.</summary>
    public IEnumerable<TaskItem> Read()
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"dataset not found: {path}", path);
        var name = Path.GetFileNameWithoutExtension(path);
        long lineNumber = 0, index = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var (item, error) = Parse(line, name, index);
            if (item is not null)
            {
                index++;
                yield return item;
                continue;
            }
            var problem = new DatasetError(path, lineNumber, error!);
            if (strict) throw new InvalidDataException(problem.ToString());
            Errors.Add(problem);
        }
    }

    private (TaskItem?, string?) Parse(string line, string name, long index)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return (null, "not a JSON object");
            if (!root.TryGetProperty(promptField, out var prompt) || prompt.ValueKind != JsonValueKind.String)
                return (null, $"field '{promptField}' is missing or not a string");
            if (!root.TryGetProperty(answerField, out var answer) || answer.ValueKind != JsonValueKind.String)
                return (null, $"field '{answerField}' is missing or not a string");
            var answerText = answer.GetString()!;
            var final = answerText.Contains("####", StringComparison.Ordinal)
                ? NumericAnswerReward.ExtractAnswer(answerText, requireHashMarker: true)?.ToString(CultureInfo.InvariantCulture)
                : answerText.Trim();
            if (string.IsNullOrEmpty(final)) return (null, $"field '{answerField}' has no final answer after '####'");
            return (new TaskItem($"{name}-{index}", prompt.GetString()!, final, index), null);
        }
        catch (JsonException e)
        {
            return (null, $"invalid JSON ({e.Message})");
        }
    }
}
