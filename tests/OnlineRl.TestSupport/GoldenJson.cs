using System.Text.Json;

namespace OnlineRl.TestSupport;

/// <summary>Reading the golden-value files written by the Python scripts.</summary>
public static class GoldenJson
{
    /// <summary>
    /// A JSON number, or one of the strings "nan", "inf", "-inf" (and true/false as 1/0 when
    /// <paramref name="booleans"/>); anything else is an error naming <paramref name="file"/>.
    /// </summary>
    public static double Number(JsonElement value, string file, bool booleans = false) => value.ValueKind switch
    {
        JsonValueKind.Number => value.GetDouble(),
        JsonValueKind.String => value.GetString() switch
        {
            "nan" => double.NaN,
            "inf" => double.PositiveInfinity,
            "-inf" => double.NegativeInfinity,
            var other => throw new FormatException($"bad number '{other}' in {file}"),
        },
        JsonValueKind.True when booleans => 1,
        JsonValueKind.False when booleans => 0,
        _ => throw new FormatException($"bad value {value} in {file}"),
    };
}
