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

/// <summary>What a <see cref="JsonlDataset"/> does with a line it cannot use.</summary>
public enum BadLinePolicy
{
    /// <summary>Stop reading with an <see cref="InvalidDataException"/> naming the file and line.</summary>
    Reject,

    /// <summary>Leave the line out and record it in <see cref="JsonlDataset.Errors"/>.</summary>
    Skip,
}

/// <summary>
/// Reads prompt/answer JSON lines, e.g. GSM8K ({"question": ..., "answer": "... #### 72"}): the prompt
/// comes from <c>promptField</c>, the answer from <c>answerField</c>: the number after the last "####", or
/// the whole answer when it is a number. A line that is not a JSON object, lacks a field, has an empty field
/// or one that is not a string, or has no final numeric answer is bad: it is reported with file and line and
/// rejected or skipped per <c>badLines</c>.
/// </summary>
public sealed class JsonlDataset(string path, string promptField = "question", string answerField = "answer",
    BadLinePolicy badLines = BadLinePolicy.Reject)
{
    /// <summary>The lines skipped so far (with <see cref="BadLinePolicy.Skip"/>).</summary>
    public List<DatasetError> Errors { get; } = new();

    /// <summary>Reads every usable item.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">A line is bad and the policy is <see cref="BadLinePolicy.Reject"/>; the message reads "file:line: problem".</exception>
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
            if (badLines == BadLinePolicy.Reject) throw new InvalidDataException(problem.ToString());
            Errors.Add(problem);
        }
    }

    private (TaskItem?, string?) Parse(string line, string name, long index)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return (null, $"not a JSON object (a {root.ValueKind})");
            var (prompt, promptError) = Text(root, promptField);
            if (prompt is null) return (null, promptError);
            var (answer, answerError) = Text(root, answerField);
            if (answer is null) return (null, answerError);
            var final = answer.Contains("####", StringComparison.Ordinal)
                ? NumericAnswerReward.ExtractAnswer(answer, requireHashMarker: true)
                : NumericAnswerReward.ParseNumber(answer);
            if (final is null)
                return (null, answer.Contains("####", StringComparison.Ordinal)
                    ? $"field '{answerField}': no number after '####'"
                    : $"field '{answerField}': no final answer (expected '#### N' or a number)");
            return (new TaskItem($"{name}-{index}", prompt, final.Value.ToString(CultureInfo.InvariantCulture), index), null);
        }
        catch (JsonException e)
        {
            return (null, $"invalid JSON ({e.Message})");
        }
    }

    /// <summary>The non-empty string of <paramref name="field"/>, or why there is none.</summary>
    private static (string? Value, string? Error) Text(JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var value)) return (null, $"field '{field}': missing");
        if (value.ValueKind != JsonValueKind.String) return (null, $"field '{field}': a {value.ValueKind}, not a string");
        var text = value.GetString()!;
        return string.IsNullOrWhiteSpace(text) ? (null, $"field '{field}': empty") : (text, null);
    }
}
