using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using OnlineRl.Analyzers;
using OnlineRl.Model;
using Xunit.Abstractions;

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// The analyzer that keeps temporary TorchSharp Scalars out of the project (shared/OnlineRl.Analyzers): its list of
/// TorchSharp members that make one inside is what TorchSharp.dll's IL says, and it flags exactly the code it should.
/// </summary>
public class ScalarLifetimeTests(ITestOutputHelper output)
{
    [Fact]
    public void The_list_of_members_that_make_a_temporary_Scalar_is_what_TorchSharp_does()
    {
        var found = MembersMakingScalars(typeof(Scalar).Assembly);
        var listed = TemporaryScalarMembers.Keys.ToHashSet(StringComparer.Ordinal);
        var missing = found.Except(listed).Order(StringComparer.Ordinal).ToList();
        var stale = listed.Except(found).Order(StringComparer.Ordinal).ToList();
        if (missing.Count + stale.Count > 0) output.WriteLine("the list for this TorchSharp:\n" + string.Join('\n', found.Order(StringComparer.Ordinal).Select(k => $"        \"{k}\",")));
        Assert.True(missing.Count == 0 && stale.Count == 0, $"not listed: {string.Join(", ", missing)}; listed but not found: {string.Join(", ", stale)}");
        // The members the project's code once called and crashed in, or would: the scan must find them.
        Assert.Contains("TorchSharp.torch+Tensor.op_Addition(Tensor,Tensor)", found);
        Assert.Contains("TorchSharp.torch+Tensor.op_Division(Tensor,Double)", found);
        Assert.Contains("TorchSharp.torch+Tensor.add(Scalar)", found);
        Assert.DoesNotContain("TorchSharp.torch+Tensor.add(Tensor,Scalar)", found);
        Assert.DoesNotContain("TorchSharp.torch+Tensor.op_Subtraction(Tensor,Tensor)", found);
    }

    [Fact]
    public async Task The_analyzer_refuses_temporary_Scalars_and_accepts_held_ones()
    {
        const string code = """
            using TorchSharp;
            using static TorchSharp.torch;
            static class Sample
            {
                static readonly Scalar One = 1.ToScalar();
                static void Bad(Tensor a, Tensor b, double eps)
                {
                    var x1 = a.mul(0.5);            // ORL0001
                    var x2 = a.masked_fill(b, eps); // ORL0001
                    var x3 = a + b;                 // ORL0002
                    var x4 = a * 2.0;               // ORL0002
                    var x5 = a.square();            // ORL0002
                    var x6 = a.ToDouble();          // ORL0002
                    var x7 = a.clamp((Scalar)eps);  // ORL0001
                    System.Func<Tensor, Tensor> x8 = a.add; // ORL0002
                }
                static void Good(Tensor a, Tensor b, double eps)
                {
                    using var held = eps.ToScalar();
                    var y1 = a.mul(held);
                    var y2 = a.add(b, One);
                    var y3 = a - b;
                    var y4 = a * b;
                    var y5 = a.add(held, One);
                    var y6 = a.item<float>();
                }
            }
            """;
        var tree = CSharpSyntaxTree.ParseText(code);
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Append(typeof(Scalar).Assembly.Location).Distinct().Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create("sample", [tree], references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        var diagnostics = await compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new TemporaryScalarAnalyzer())).GetAnalyzerDiagnosticsAsync();
        var lines = code.Split('\n');
        var flagged = diagnostics.Select(d => (d.Id, Line: lines[d.Location.GetLineSpan().StartLinePosition.Line].Trim())).ToList();
        foreach (var (id, line) in flagged) output.WriteLine($"{id}: {line}");
        var expected = lines.Select(l => l.Trim()).Where(l => l.Contains("// ORL", StringComparison.Ordinal))
            .Select(l => (Id: l[(l.IndexOf("// ", StringComparison.Ordinal) + 3)..], Line: l)).ToList();
        Assert.Equal(expected.OrderBy(e => e.Line, StringComparer.Ordinal), flagged.Distinct().OrderBy(f => f.Line, StringComparer.Ordinal));
    }

    [Fact]
    public void Held_scalar_arithmetic_equals_TorchSharps_operators()
    {
        using var scope = NewDisposeScope();
        var a = randn(3, 4);
        var b = randn(3, 4);
        var ints = arange(6L);
        Assert.True(Same(a.Plus(b), a + b));
        Assert.True(Same(a.Plus(0.25), a + 0.25));
        Assert.True(Same(a.Minus(0.25), a - 0.25));
        Assert.True(Same(a.Times(-3.5), a * -3.5));
        Assert.True(Same(a.DividedBy(0.7), a / 0.7));
        Assert.True(Same(a.Squared(), a.square()));
        Assert.True(Same(ints.Minus(1L), ints - 1L));
        Assert.Equal(ScalarType.Int64, ints.Minus(1L).dtype);
        Assert.True(Same(HeldScalars.Range(2, 9, step: 3), arange(2L, 9L, 3L)));
        Assert.Equal(a[1, 2].item<float>(), a[1, 2].ItemAsDouble());
        Assert.Equal(a.to(ScalarType.Float64)[0, 0].item<double>(), a.to(ScalarType.Float64)[0, 0].ItemAsDouble());
    }

    private static bool Same(Tensor x, Tensor y) => x.dtype == y.dtype && x.allclose(y, rtol: 0, atol: 0);

    /// <summary>
    /// Public TorchSharp members whose IL makes a Scalar (a conversion to Scalar or a ToScalar call), directly or
    /// through other TorchSharp members, as <see cref="TemporaryScalarAnalyzer.Key"/> names them. Scalar's own
    /// conversions and ToScalar are how code makes one to hold, so they are not listed.
    /// </summary>
    private static HashSet<string> MembersMakingScalars(Assembly torchSharp)
    {
        var scalar = typeof(Scalar);
        const BindingFlags declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var methods = torchSharp.GetTypes()
            .Where(t => t != scalar && t.Name != "ScalarExtensionMethods")
            .SelectMany(t => t.GetMethods(declared).Cast<MethodBase>().Concat(t.GetConstructors(declared)))
            .ToList();
        var calls = methods.ToDictionary(m => m, Callees);
        bool MakesScalar(MethodBase callee) =>
            callee.DeclaringType == scalar && callee.Name == "op_Implicit" || callee.DeclaringType?.Name == "ScalarExtensionMethods";
        var making = methods.Where(m => calls[m].Any(MakesScalar)).ToHashSet();
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var method in methods)
                if (!making.Contains(method) && calls[method].Any(c => making.Contains(c) || c is MethodInfo { IsGenericMethod: true } g && making.Contains(g.GetGenericMethodDefinition())))
                    grew = making.Add(method);
        }
        return making.Where(m => m.IsPublic && (m.DeclaringType!.IsPublic || m.DeclaringType.IsNestedPublic))
            .Select(m => $"{m.DeclaringType!.FullName}.{m.Name}({string.Join(",", m.GetParameters().Select(p => p.ParameterType.Name))})")
            .ToHashSet(StringComparer.Ordinal);
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue =
        typeof(OpCodes).GetFields().Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>The methods and constructors <paramref name="method"/>'s IL calls.</summary>
    private static List<MethodBase> Callees(MethodBase method)
    {
        var callees = new List<MethodBase>();
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (BadImageFormatException) { return callees; }
        if (il is null) return callees;
        for (var i = 0; i < il.Length;)
        {
            var op = il[i] == 0xFE ? OpCodesByValue[(short)(0xFE00 | il[i + 1])] : OpCodesByValue[il[i]];
            i += op.Size;
            if ((op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj) && Resolve(method.Module, BitConverter.ToInt32(il, i)) is { } callee)
                callees.Add(callee);
            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
        }
        return callees;
    }

    private static MethodBase? Resolve(Module module, int token)
    {
        // A call into a generic type's method can name type parameters this context cannot bind: not a Scalar maker.
        try { return module.ResolveMethod(token); }
        catch (ArgumentException) { return null; }
    }
}
