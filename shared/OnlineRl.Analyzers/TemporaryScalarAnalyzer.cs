using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace OnlineRl.Analyzers;

/// <summary>
/// Refuses code that lets a temporary <c>TorchSharp.Scalar</c> reach libtorch. TorchSharp passes only a Scalar's
/// native handle to libtorch and keeps no reference to the Scalar during the call, so a Scalar nothing else holds can
/// be finalized (its native memory freed) by the finalizer thread while libtorch still reads it: "Expected false to be
/// true" from <c>c10::Scalar::toDouble</c> if lucky, a wrong number if not. Seen in our services as crashes in
/// <c>x / temperature</c>, <c>variance + eps</c> and <c>masked_fill(mask, value)</c> under GC pressure.
/// <list type="bullet">
/// <item>ORL0001: a conversion to Scalar, implicit (<c>tensor.mul(0.5)</c>) or a cast; <c>ToScalar()</c> is the way to make one to hold.</item>
/// <item>ORL0002: a TorchSharp member that makes such a temporary itself (<see cref="TemporaryScalarMembers"/>),
/// e.g. <c>a + b</c> on two tensors, whose <c>alpha = 1</c> is made inside <c>Tensor.add</c>.</item>
/// </list>
/// The fix: make the Scalar with <c>ToScalar()</c> and hold it until the call returns (a <c>using</c> variable, a
/// field of a live object, a static), and call the overload that takes every Scalar from the caller.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class TemporaryScalarAnalyzer : DiagnosticAnalyzer
{
    /// <summary>A conversion (implicit or cast) to <c>TorchSharp.Scalar</c>.</summary>
    public static readonly DiagnosticDescriptor ImplicitScalar = new(
        "ORL0001", "Temporary TorchSharp Scalar",
        "Conversion of '{0}' to TorchSharp.Scalar: the temporary can be finalized while libtorch reads it; make it with ToScalar() and hold it until the call returns",
        "Reliability", DiagnosticSeverity.Error, isEnabledByDefault: true);

    /// <summary>A TorchSharp member that makes a temporary <c>TorchSharp.Scalar</c> inside.</summary>
    public static readonly DiagnosticDescriptor MemberMakesScalar = new(
        "ORL0002", "TorchSharp member makes a temporary Scalar",
        "'{0}' makes a TorchSharp.Scalar inside that can be finalized while libtorch reads it; call an overload that takes held Scalars, such as add(other, alpha)",
        "Reliability", DiagnosticSeverity.Error, isEnabledByDefault: true);

    private static readonly HashSet<string> Hazards = new(TemporaryScalarMembers.Keys);

    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(ImplicitScalar, MemberMakesScalar);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterOperationAction(AnalyzeConversion, OperationKind.Conversion);
        context.RegisterOperationAction(c => AnalyzeMember(c, ((IInvocationOperation)c.Operation).TargetMethod), OperationKind.Invocation);
        context.RegisterOperationAction(c => AnalyzeMember(c, ((IBinaryOperation)c.Operation).OperatorMethod), OperationKind.Binary);
        context.RegisterOperationAction(c => AnalyzeMember(c, ((ICompoundAssignmentOperation)c.Operation).OperatorMethod), OperationKind.CompoundAssignment);
        context.RegisterOperationAction(c => AnalyzeMember(c, ((IObjectCreationOperation)c.Operation).Constructor), OperationKind.ObjectCreation);
        // A method group (x.add passed as a delegate) calls the member later, just the same.
        context.RegisterOperationAction(c => AnalyzeMember(c, ((IMethodReferenceOperation)c.Operation).Method), OperationKind.MethodReference);
    }

    private static void AnalyzeConversion(OperationAnalysisContext context)
    {
        var conversion = (IConversionOperation)context.Operation;
        if (!IsScalar(conversion.Type) || conversion.Operand.Type is null || IsScalar(conversion.Operand.Type)) return;
        if (conversion.OperatorMethod is null) return;
        context.ReportDiagnostic(Diagnostic.Create(ImplicitScalar, conversion.Syntax.GetLocation(), conversion.Operand.Type.ToDisplayString()));
    }

    private static void AnalyzeMember(OperationAnalysisContext context, IMethodSymbol? method)
    {
        if (method is null || !Hazards.Contains(Key(method))) return;
        context.ReportDiagnostic(Diagnostic.Create(MemberMakesScalar, context.Operation.Syntax.GetLocation(), method.ToDisplayString()));
    }

    private static bool IsScalar(ITypeSymbol? type) =>
        type is { Name: "Scalar", ContainingNamespace: { Name: "TorchSharp", ContainingNamespace.IsGlobalNamespace: true } };

    /// <summary>
    /// A member's key: its declaring type's full name with '+' before nested types, '.', its name, and its parameter
    /// types' metadata names ("Int64[]", "Nullable`1", "Tensor&amp;" for ref) in parentheses, the way reflection names them.
    /// </summary>
    public static string Key(IMethodSymbol method)
    {
        method = method.OriginalDefinition;
        var text = new StringBuilder(TypeName(method.ContainingType)).Append('.').Append(method.Name).Append('(');
        text.Append(string.Join(",", method.Parameters.Select(p => ParameterTypeName(p.Type) + (p.RefKind == RefKind.None ? "" : "&"))));
        return text.Append(')').ToString();
    }

    private static string TypeName(INamedTypeSymbol type)
    {
        if (type.ContainingType is { } outer) return TypeName(outer) + "+" + type.MetadataName;
        var space = type.ContainingNamespace.ToDisplayString();
        return type.ContainingNamespace.IsGlobalNamespace ? type.MetadataName : space + "." + type.MetadataName;
    }

    private static string ParameterTypeName(ITypeSymbol type) => type switch
    {
        IArrayTypeSymbol array => ParameterTypeName(array.ElementType) + "[]",
        IPointerTypeSymbol pointer => ParameterTypeName(pointer.PointedAtType) + "*",
        _ => type.MetadataName,
    };
}
