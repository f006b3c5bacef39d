using System.Reflection;
using System.Text.RegularExpressions;
using OnlineRl.TestSupport;

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// Keeps the golden cases in step with the code: every TorchSharp op that shared/ and services/ call is checked
/// against PyTorch (by the golden cases named here, or by the test named), and nothing is listed for an op no
/// longer called. Adding a call to a new op fails this test until it gets a case.
/// </summary>
public partial class ProjectOpCoverageTests
{
    /// <summary>Op name to the golden cases (golden/ops.json) that check it.</summary>
    private static readonly Dictionary<string, string[]> GoldenCases = new()
    {
        ["add_"] = ["add__tensor"],
        ["alias"] = ["alias"],
        ["arange"] = ["arange_range_int64", "arange_end_int64", "arange_step2_int64", "arange_float32"],
        ["argmax"] = ["argmax_last", "argmax_dim_keepdim"],
        ["cat"] = ["cat_last", "cat_dim1_int64", "cat_int64"],
        ["add"] = ["add", "add_scalar"],
        ["clamp"] = ["clamp", "clamp_tensor"],
        ["clamp_max"] = ["clamp_max"],
        ["clamp_min"] = ["clamp_min", "clamp_min_int64"],
        ["contiguous"] = ["contiguous"],
        ["copy_"] = ["copy__narrow", "copy__convert"],
        ["cos"] = ["cos", "sin_cos_large"],
        ["cpu"] = ["cpu"],
        ["cross_entropy"] = ["cross_entropy", "cross_entropy_ignore_index"],
        ["cumsum"] = ["cumsum_last", "cumsum_int64"],
        ["detach"] = ["detach"],
        ["div"] = ["div_scalar"],
        ["dropout"] = ["dropout", "dropout_eval"],
        ["empty"] = ["empty_shape", "bytes_float32", "bytes_bfloat16"],
        ["eq"] = ["eq_long_int64"],
        ["exp"] = ["exp"],
        ["expand"] = ["repeat_kv"],
        ["fill_"] = ["fill_"],
        ["gather"] = ["gather_last", "gather_dim1"],
        ["gt"] = ["gt", "gt_broadcast_int64", "gt_scalar"],
        ["index_put_"] = ["index_put__rows_positions"],
        ["index_select"] = ["index_select", "index_select_4d"],
        ["linear"] = ["linear_bias", "linear_nobias_3d", "linear_bias_3d"],
        ["linspace"] = ["linspace"],
        ["log_softmax"] = ["log_softmax_last", "log_softmax_large"],
        ["logical_and"] = ["logical_and"],
        ["logical_or"] = ["logical_or_broadcast"],
        ["logsigmoid"] = ["logsigmoid"],
        ["lt"] = ["lt_broadcast", "lt_scalar"],
        ["masked_fill"] = ["masked_fill_min_float", "masked_fill_neg_inf"],
        ["matmul"] = ["matmul_mat_mat"],
        ["max"] = ["max_all"],
        ["maximum"] = ["maximum"],
        ["mean"] = ["mean_all", "mean_dim_keepdim", "mean_last_keepdim"],
        ["minimum"] = ["minimum"],
        ["mse_loss"] = ["mse_loss"],
        ["mul"] = ["mul_scalar", "square"],
        ["multinomial"] = ["multinomial", "multinomial_generator", "multinomial_generator_masked"],
        ["narrow"] = ["narrow", "copy__narrow"],
        ["ne"] = ["ne_broadcast_int64"],
        ["neg"] = ["neg"],
        ["normal_"] = ["normal_", "normal__small"],
        ["ones"] = ["ones_int64", "ones_0dim"],
        ["rand"] = ["rand"],
        ["randint"] = ["randint"],
        ["randn"] = ["randn"],
        ["randperm"] = ["randperm_generator", "randperm_generator_large"],
        ["relu"] = ["relu"],
        ["reshape"] = ["reshape", "reshape_transposed", "repeat_kv"],
        ["rsqrt"] = ["rsqrt"],
        ["scaled_dot_product_attention"] = ["scaled_dot_product_attention", "scaled_dot_product_attention_decode", "scaled_dot_product_attention_padding_row"],
        ["scatter"] = ["scatter_bool"],
        ["scatter_add"] = ["scatter_add_dim1"],
        ["select"] = ["select"],
        ["silu"] = ["silu"],
        ["sin"] = ["sin", "sin_cos_large"],
        ["softmax"] = ["softmax_last", "softmax_masked"],
        ["sort"] = ["sort_descending"],
        ["sub"] = ["sub_scalar", "sub_int", "sub_long_int64"],
        ["squeeze"] = ["squeeze_last"],
        ["stack"] = ["stack_0dim"],
        ["std"] = ["std_dim_keepdim"],
        ["sum"] = ["sum_all", "sum_dim", "sum_last"],
        ["tanh"] = ["tanh"],
        ["tensor"] = ["tensor_int64", "tensor_float32", "tensor_float64_as_float32"],
        ["to"] = ["int64_to_float32", "bool_to_float32", "to_float64", "float64_to_float32", "to_bfloat16", "bfloat16_to_float32", "to_float16", "float16_to_float32"],
        ["topk"] = ["topk_last"],
        ["transpose"] = ["transpose", "reshape_transposed"],
        ["unsqueeze"] = ["unsqueeze", "unsqueeze_last", "repeat_kv"],
        ["view"] = ["view", "view_infer"],
        ["zero_"] = ["zero_"],
        ["zeros"] = ["zeros"],
        ["zeros_like"] = ["zeros_like"],
    };

    /// <summary>Calls that compute nothing to compare with PyTorch, or that another test (named) checks.</summary>
    private static readonly Dictionary<string, string> Elsewhere = new()
    {
        ["backward"] = "every golden case back-propagates: GoldenOpTests.Op_matches_pytorch",
        ["clip_grad_norm_"] = "OptimGoldenTests.clip_grad_norm_matches_torch",
        ["data"] = "reads values: every golden case reads its outputs with it",
        ["device"] = "a device handle: CudaTests.DtypesRoundTripThroughTheGpu",
        ["dim"] = "shape metadata",
        ["get_num_threads"] = "a setting",
        ["get_rng_state"] = "GeneratorTests.Saved_state_repeats_the_stream_for_private_and_global_generators",
        ["is_floating_point"] = "a dtype predicate",
        ["item"] = "reads a value, as data does",
        ["manual_seed"] = "the seeded golden cases (rand, normal_, dropout, multinomial)",
        ["no_grad"] = "MemoryAndErrorTests.no_grad_records_no_graph_and_ends_with_its_block",
        ["numel"] = "shape metadata",
        ["set_num_threads"] = "a setting",
        ["set_rng_state"] = "GeneratorTests.Saved_state_repeats_the_stream_for_private_and_global_generators",
        ["size"] = "shape metadata",
    };

    // String literals (raw, verbatim, regular), character literals and comments, which may mention op names.
    [GeneratedRegex("\"\"\"[\\s\\S]*?\"\"\"|@\"(?:[^\"]|\"\")*\"|\"(?:\\\\.|[^\"\\\\\\n])*\"|'(?:\\\\.|[^'\\\\\\n])+'|//[^\\n]*|/\\*[\\s\\S]*?\\*/")]
    private static partial Regex LiteralsAndComments();

    // A member call: .name( or .name<T>(, lower-case as TorchSharp's op names are.
    [GeneratedRegex(@"\.([a-z_][A-Za-z0-9_]*)\s*[(<]")]
    private static partial Regex MemberCall();

    /// <summary>The public method names of TorchSharp's tensor, torch, torch.nn.functional and torch.nn.utils.</summary>
    private static HashSet<string> TorchSharpOps() =>
        new[] { typeof(torch.Tensor), typeof(torch), typeof(torch.nn.functional), typeof(torch.nn.utils) }
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance))
            .Select(m => m.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>TorchSharp op name to the source files of shared/ and services/ that call it.</summary>
    private static Dictionary<string, SortedSet<string>> CalledOps()
    {
        var ops = TorchSharpOps();
        var called = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var folder in new[] { "shared", "services" })
        foreach (var file in Directory.EnumerateFiles(RepoPaths.Of(folder), "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(RepoPaths.Root, file);
            if (relative.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj")) continue;
            var code = LiteralsAndComments().Replace(File.ReadAllText(file), " ");
            foreach (Match call in MemberCall().Matches(code))
            {
                var name = call.Groups[1].Value;
                if (!ops.Contains(name)) continue;
                if (!called.TryGetValue(name, out var files)) called[name] = files = new SortedSet<string>(StringComparer.Ordinal);
                files.Add(relative);
            }
        }
        return called;
    }

    [Fact]
    public void Every_op_the_project_calls_is_checked_against_PyTorch()
    {
        var called = CalledOps();
        Assert.True(called.Count >= 50, $"found only {called.Count} TorchSharp ops in shared/ and services/: is the scan broken?");

        var uncovered = called.Where(c => !GoldenCases.ContainsKey(c.Key) && !Elsewhere.ContainsKey(c.Key))
            .Select(c => $"{c.Key} ({string.Join(", ", c.Value)})").ToList();
        Assert.True(uncovered.Count == 0, "ops called without a golden case (add one to golden/make_golden.py and GoldenOpTests.Ops): "
                                           + string.Join("; ", uncovered));

        var stale = GoldenCases.Keys.Concat(Elsewhere.Keys).Where(op => !called.ContainsKey(op)).Order().ToList();
        Assert.True(stale.Count == 0, "listed but no longer called (drop them and their golden cases): " + string.Join(", ", stale));

        var cases = Golden.Cases.EnumerateObject().Select(c => c.Name).ToHashSet();
        var missing = GoldenCases.SelectMany(g => g.Value).Where(c => !cases.Contains(c)).ToList();
        Assert.True(missing.Count == 0, "listed golden cases that golden/ops.json lacks: " + string.Join(", ", missing));
        var unused = cases.Where(c => !GoldenCases.Values.Any(v => v.Contains(c)) && !CasesWithoutAMemberCall.Contains(c)).Order().ToList();
        Assert.True(unused.Count == 0, "golden cases no listed op needs: " + string.Join(", ", unused));

        foreach (var (op, where) in Elsewhere)
        {
            var test = TestName().Match(where);
            if (!test.Success) continue;
            var type = typeof(ProjectOpCoverageTests).Assembly.GetType($"{typeof(ProjectOpCoverageTests).Namespace}.{test.Groups[1].Value}");
            Assert.True(type?.GetMethod(test.Groups[2].Value) is not null, $"{op}: the test {test.Value} does not exist");
        }
    }

    /// <summary>
    /// Cases of calls the scan cannot name: C# operators (+, -, *, /, unary -) and nn.Embedding's forward.
    /// </summary>
    private static readonly HashSet<string> CasesWithoutAMemberCall =
    [
        "neg_operator", "add", "sub", "mul", "div", "operators_mix", "mul_broadcast_row", "mul_broadcast_outer",
        "mul_broadcast_heads", "sub_broadcast_keepdim", "div_broadcast_keepdim", "mul_0dim", "add_scalar", "sub_scalar",
        "sub_int", "sub_long_int64", "rmul_scalar", "div_scalar", "embedding",
    ];

    [GeneratedRegex(@"\b(\w+Tests)\.(\w+)")]
    private static partial Regex TestName();
}
