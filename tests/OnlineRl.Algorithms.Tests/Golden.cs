using System.Diagnostics;
using System.Text.Json;

namespace OnlineRl.Algorithms.Tests;

/// <summary>Reads golden/algorithms.json (written by golden/make_golden.py) and compares results with it.</summary>
internal static class Golden
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder, FileName))));

    internal const string FileName = "algorithms.json";

    internal static string Folder => Path.Combine(AppContext.BaseDirectory, "golden");

    internal static JsonElement Cases => Document.Value.RootElement.GetProperty("cases");

    internal static JsonElement Case(string name) => Cases.GetProperty(name);

    /// <summary>A JSON number, or one of the strings "nan", "inf", "-inf".</summary>
    internal static double Number(JsonElement value) => OnlineRl.TestSupport.GoldenJson.Number(value, FileName);

    internal static long[] Shape(JsonElement spec) => spec.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();

    internal static double[] Values(JsonElement spec) => spec.GetProperty("data").EnumerateArray().Select(Number).ToArray();

    /// <summary>The values of a floating-point tensor as doubles.</summary>
    internal static double[] Read(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        return t.detach().to(ScalarType.Float64, CPU).data<double>().ToArray();
    }

    /// <summary>Every value within <paramref name="tolerance"/> absolute plus relative; NaN only where NaN is expected.</summary>
    internal static void AssertClose(double[] expected, double[] actual, double tolerance, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (var k = 0; k < expected.Length; k++)
        {
            double e = expected[k], a = actual[k];
            var ok = double.IsNaN(e) ? double.IsNaN(a) : Math.Abs(a - e) <= tolerance + tolerance * Math.Abs(e);
            Assert.True(ok, $"{what}: element {k} is {a:R}, expected {e:R} (tolerance {tolerance})");
        }
    }
}

/// <summary>
/// One golden case replayed in one floating-point type: its inputs as tensors of that type (created on first
/// use, with requires_grad where the case differentiates by them) and its options.
/// </summary>
internal sealed class GoldenCase(string name, ScalarType dtype)
{
    private readonly JsonElement spec = Golden.Case(name);
    private readonly Dictionary<string, Tensor> leaves = new();

    public string Name => name;
    public ScalarType Dtype => dtype;
    public string Kind => spec.GetProperty("kind").GetString()!;
    public JsonElement Outputs => spec.GetProperty("outputs");
    public JsonElement Grads => spec.GetProperty("grads");
    private JsonElement Inputs => spec.GetProperty("inputs");
    private JsonElement Options => spec.GetProperty("options");

    /// <summary>The input tensor <paramref name="input"/>, in <see cref="Dtype"/>.</summary>
    public Tensor In(string input)
    {
        if (leaves.TryGetValue(input, out var leaf)) return leaf;
        Assert.True(Inputs.TryGetProperty(input, out var t), $"{name} has no input '{input}'");
        // Converted first, then made a leaf: TorchSharp's tensor(double[], ..., dtype, requires_grad) sets requires_grad
        // before converting, so a float32 input would be a non-leaf whose .grad stays empty.
        using (var values = torch.tensor(Golden.Values(t), Golden.Shape(t), ScalarType.Float64))
            leaf = values.to(dtype, copy: true).requires_grad_(t.GetProperty("grad").GetBoolean());
        leaves[input] = leaf;
        return leaf;
    }

    /// <summary>The input tensor, or null when the case has none of that name.</summary>
    public Tensor? Maybe(string input) => Inputs.TryGetProperty(input, out _) ? In(input) : null;

    public double Number(string option) => Options.GetProperty(option).GetDouble();
    public double? NumberOrNull(string option) => Options.GetProperty(option).ValueKind == JsonValueKind.Null ? null : Number(option);
    public long? IntegerOrNull(string option) => Options.GetProperty(option).ValueKind == JsonValueKind.Null ? null : Options.GetProperty(option).GetInt64();
    public bool Flag(string option) => Options.GetProperty(option).GetBoolean();
    public string Text(string option) => Options.GetProperty(option).GetString()!;
    public float[] Floats(string option) => Options.GetProperty(option).EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
    public int Integer(string option) => Options.GetProperty(option).GetInt32();
}
