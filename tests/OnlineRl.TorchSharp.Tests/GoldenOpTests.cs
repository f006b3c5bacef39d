using System.Diagnostics;
using System.Text.Json;
using F = TorchSharp.torch.nn.functional;

// The tests share process-wide state: the global random generator (seeded cases) and the live tensor
// count (MemoryAndErrorTests). Run them one at a time so that neither is disturbed by another test.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// Every op of the binding against golden values made by golden/make_golden.py with PyTorch (same libtorch):
/// outputs, and the gradient of sum_i sum(out_i * cotangent_i) with respect to every input that requires grad.
/// Each case in golden/ops.json has a lambda below that mirrors the Python lambda of the same name.
/// </summary>
public class GoldenOpTests
{
    private static Tensor[] Cat(Tensor[] a, long dim) => [torch.cat(a, dim)];

    private static Tensor[] Pair((Tensor values, Tensor indices) r) => [r.values, r.indices];

    private static Tensor InPlace(Tensor x, Action<Tensor> update)
    {
        var y = x.clone();
        update(y);
        return y;
    }

    private static Tensor[] Seeded(long seed, Func<Tensor> make)
    {
        torch.manual_seed(seed);
        return [make()];
    }

    /// <summary>Case name to the C# call; the inputs arrive in the order of the Python lambda's parameters.</summary>
    internal static readonly Dictionary<string, Func<Tensor[], Tensor[]>> Ops = new()
    {
        // ---- element-wise, one input ----
        ["neg"] = a => [a[0].neg()],
        ["neg_operator"] = a => [-a[0]],
        ["exp"] = a => [a[0].exp()],
        ["log"] = a => [a[0].log()],
        ["sqrt"] = a => [a[0].sqrt()],
        ["rsqrt"] = a => [a[0].rsqrt()],
        ["abs"] = a => [a[0].abs()],
        ["sigmoid"] = a => [a[0].sigmoid()],
        ["tanh"] = a => [a[0].tanh()],
        ["relu"] = a => [a[0].relu()],
        ["silu"] = a => [a[0].silu()],
        ["gelu"] = a => [a[0].gelu()],
        ["gelu_tanh"] = a => [a[0].gelu(tanhApproximation: true)],
        ["sin"] = a => [a[0].sin()],
        ["cos"] = a => [a[0].cos()],
        ["logical_not"] = a => [a[0].logical_not()],
        ["logical_not_float"] = a => [a[0].logical_not()],
        ["floor"] = a => [a[0].floor()],
        ["ceil"] = a => [a[0].ceil()],
        ["round"] = a => [a[0].round()],
        ["sign"] = a => [a[0].sign()],
        ["square"] = a => [a[0].square()],
        ["reciprocal"] = a => [a[0].reciprocal()],
        ["log1p"] = a => [a[0].log1p()],
        ["expm1"] = a => [a[0].expm1()],
        ["isnan"] = a => [a[0].isnan()],
        ["isinf"] = a => [a[0].isinf()],
        ["isfinite"] = a => [a[0].isfinite()],
        ["exp_float64"] = a => [a[0].exp()],
        ["tanh_float64"] = a => [a[0].tanh()],
        ["exp_transposed"] = a => [a[0].t().exp()],
        ["neg_int64"] = a => [a[0].neg()],
        ["abs_int32"] = a => [a[0].abs()],
        ["square_int64"] = a => [a[0].square()],
        ["sqrt_int64"] = a => [a[0].sqrt()],

        // ---- element-wise, two inputs ----
        ["add"] = a => [a[0].add(a[1])],
        ["sub"] = a => [a[0].sub(a[1])],
        ["mul"] = a => [a[0].mul(a[1])],
        ["div"] = a => [a[0].div(a[1])],
        ["pow"] = a => [a[0].pow(a[1])],
        ["maximum"] = a => [a[0].maximum(a[1])],
        ["minimum"] = a => [a[0].minimum(a[1])],
        ["remainder"] = a => [a[0].remainder(a[1])],
        ["floor_divide"] = a => [a[0].floor_divide(a[1])],
        ["eq"] = a => [a[0].eq(a[1])],
        ["ne"] = a => [a[0].ne(a[1])],
        ["lt"] = a => [a[0].lt(a[1])],
        ["le"] = a => [a[0].le(a[1])],
        ["gt"] = a => [a[0].gt(a[1])],
        ["ge"] = a => [a[0].ge(a[1])],
        ["logical_and"] = a => [a[0].logical_and(a[1])],
        ["logical_or"] = a => [a[0].logical_or(a[1])],
        ["operators_mix"] = a => [(a[0] + a[1]) * a[2] - a[0] / a[2]],
        ["add_broadcast_row"] = a => [a[0].add(a[1])],
        ["mul_broadcast_outer"] = a => [a[0].mul(a[1])],
        ["sub_broadcast_3d"] = a => [a[0].sub(a[1])],
        ["div_broadcast_0dim"] = a => [a[0].div(a[1])],
        ["maximum_broadcast"] = a => [a[0].maximum(a[1])],
        ["pow_broadcast"] = a => [a[0].pow(a[1])],
        ["lt_broadcast"] = a => [a[0].lt(a[1])],
        ["add_int64_float32"] = a => [a[0].add(a[1])],
        ["mul_int32_int64"] = a => [a[0].mul(a[1])],
        ["add_float32_float64"] = a => [a[0].add(a[1])],
        ["div_int64"] = a => [a[0].div(a[1])],
        ["floor_divide_int64"] = a => [a[0].floor_divide(a[1])],
        ["remainder_int64"] = a => [a[0].remainder(a[1])],
        ["pow_int64"] = a => [a[0].pow(a[1])],
        ["eq_int64"] = a => [a[0].eq(a[1])],
        ["add_bool_int64"] = a => [a[0].add(a[1])],
        ["add_scalar"] = a => [a[0].add(2.5)],
        ["sub_scalar"] = a => [a[0].sub(2.5)],
        ["mul_scalar"] = a => [a[0].mul(-1.5)],
        ["div_scalar"] = a => [a[0].div(3.0)],
        ["pow_scalar_2"] = a => [a[0].pow(2.0)],
        ["pow_scalar_half"] = a => [a[0].pow(0.5)],
        ["pow_scalar_3"] = a => [a[0].pow(3.0)],
        ["pow_scalar_neg"] = a => [a[0].pow(-1.5)],
        ["eq_scalar"] = a => [a[0].eq(1.0)],
        ["ne_scalar"] = a => [a[0].ne(1.0)],
        ["lt_scalar"] = a => [a[0].lt(1.0)],
        ["le_scalar"] = a => [a[0].le(1.0)],
        ["gt_scalar"] = a => [a[0].gt(1.0)],
        ["ge_scalar"] = a => [a[0].ge(1.0)],
        ["add_scalar_int64"] = a => [a[0].add(2.5)],
        ["add_scalar_float64"] = a => [a[0].add(0.1)],
        ["mul_scalar_float16"] = a => [a[0].mul(0.1)],
        ["add_long"] = a => [a[0].add(2L)],
        ["add_long_int64"] = a => [a[0].add(3L)],
        ["add_long_int32"] = a => [a[0].add(3L)],
        ["sub_long"] = a => [a[0].sub(2L)],
        ["sub_long_int64"] = a => [a[0].sub(7L)],
        ["mul_long"] = a => [a[0].mul(3L)],
        ["mul_long_int64"] = a => [a[0].mul(-3L)],
        ["div_long_int64"] = a => [a[0].div(2L)],
        ["div_long"] = a => [a[0].div(4L)],
        ["floor_divide_long_int64"] = a => [a[0].floor_divide(3L)],
        ["remainder_long_int64"] = a => [a[0].remainder(3L)],
        ["remainder_long_float"] = a => [a[0].remainder(2L)],
        ["eq_long_int64"] = a => [a[0].eq(2L)],
        ["ne_long_int64"] = a => [a[0].ne(2L)],
        ["rsub_double"] = a => [2.5 - a[0]],
        ["rsub_long"] = a => [3L - a[0]],
        ["rsub_long_int64"] = a => [3L - a[0]],
        ["rdiv_double"] = a => [2.0 / a[0]],
        ["radd_double"] = a => [2.5 + a[0]],
        ["radd_long"] = a => [2L + a[0]],
        ["rmul_double"] = a => [0.5 * a[0]],
        ["rmul_long"] = a => [3L * a[0]],
        ["pow_scalar_base"] = a => [torch.pow(2.0, a[0])],

        // ---- in place (on a clone) ----
        ["add__tensor"] = a => [InPlace(a[0], y => y.add_(a[1]))],
        ["add__broadcast"] = a => [InPlace(a[0], y => y.add_(a[1]))],
        ["add__scalar"] = a => [InPlace(a[0], y => y.add_(1.5))],
        ["sub__tensor"] = a => [InPlace(a[0], y => y.sub_(a[1]))],
        ["mul__tensor"] = a => [InPlace(a[0], y => y.mul_(a[1]))],
        ["mul__scalar"] = a => [InPlace(a[0], y => y.mul_(-2.5))],
        ["div__scalar"] = a => [InPlace(a[0], y => y.div_(3.0))],
        ["zero_"] = a => [InPlace(a[0], y => y.zero_())],
        ["fill_"] = a => [InPlace(a[0], y => y.fill_(2.5))],
        ["fill__int64"] = a => [InPlace(a[0], y => y.fill_(7.0))],
        ["copy__broadcast"] = a => [InPlace(a[0], y => y.copy_(a[1]))],
        ["copy__convert"] = a => [InPlace(a[0], y => y.copy_(a[1]))],
        ["add__int64"] = a => [InPlace(a[0], y => y.add_(a[1]))],
        ["uniform_"] = _ => Seeded(5, () => torch.empty([3, 4]).uniform_(-2.0, 3.0)),
        ["normal_"] = _ => Seeded(6, () => torch.empty([2, 5]).normal_(1.0, 0.5)),
        ["normal__float64"] = _ => Seeded(7, () => torch.empty([4, 5], torch.float64).normal_(-1.0, 2.0)),

        // ---- selection ----
        ["clamp"] = a => [a[0].clamp(-0.5, 0.5)],
        ["clamp_min"] = a => [a[0].clamp(min: -0.5)],
        ["clamp_max"] = a => [a[0].clamp(max: 0.5)],
        ["clamp_int64"] = a => [a[0].clamp(2.0, 5.0)],
        ["clamp_int64_fractional"] = a => [a[0].clamp(2.5, 5.0)],
        ["clamp_tensor"] = a => [a[0].clamp(a[1], a[2])],
        ["clamp_tensor_min"] = a => [a[0].clamp(a[1], null)],
        ["clamp_tensor_max"] = a => [a[0].clamp(null, a[1])],
        ["where"] = a => [torch.where(a[0], a[1], a[2])],
        ["where_broadcast"] = a => [torch.where(a[0], a[1], a[2])],
        ["where_int64"] = a => [torch.where(a[0], a[1], a[2])],
        ["masked_fill"] = a => [a[0].masked_fill(a[1], -1.5)],
        ["masked_fill_neg_inf"] = a => [a[0].masked_fill(a[1], double.NegativeInfinity)],
        ["masked_fill_broadcast"] = a => [a[0].masked_fill(a[1], 0.25)],
        ["masked_fill_int64"] = a => [a[0].masked_fill(a[1], 7.0)],
        ["masked_select"] = a => [a[0].masked_select(a[1])],
        ["masked_select_broadcast"] = a => [a[0].masked_select(a[1])],

        // ---- reductions ----
        ["sum_all"] = a => [a[0].sum()],
        ["sum_all_keepdim"] = a => [a[0].sum(null, keepdim: true)],
        ["sum_dim"] = a => [a[0].sum(1)],
        ["sum_dim_keepdim"] = a => [a[0].sum(1, keepdim: true)],
        ["sum_neg_dim"] = a => [a[0].sum(-1)],
        ["sum_dims"] = a => [a[0].sum([0, 2])],
        ["sum_dims_keepdim"] = a => [a[0].sum([0, 2], keepdim: true)],
        ["sum_int64"] = a => [a[0].sum()],
        ["sum_int32_dim"] = a => [a[0].sum(0)],
        ["sum_bool"] = a => [a[0].sum()],
        ["sum_float64"] = a => [a[0].sum(1)],
        ["mean_all"] = a => [a[0].mean()],
        ["mean_all_keepdim"] = a => [a[0].mean(null, keepdim: true)],
        ["mean_dim"] = a => [a[0].mean(1)],
        ["mean_dim_keepdim"] = a => [a[0].mean(-1, keepdim: true)],
        ["mean_dims"] = a => [a[0].mean([0, 2])],
        ["amax_all"] = a => [a[0].amax()],
        ["amax_dims"] = a => [a[0].amax([0, 2])],
        ["amax_dims_keepdim"] = a => [a[0].amax([1], keepdim: true)],
        ["amin_all"] = a => [a[0].amin()],
        ["amin_dims"] = a => [a[0].amin([0, 2])],
        ["amin_dims_keepdim"] = a => [a[0].amin([-1], keepdim: true)],
        ["max_all"] = a => [a[0].max()],
        ["min_all"] = a => [a[0].min()],
        ["max_all_int64"] = a => [a[0].max()],
        ["logsumexp_dim"] = a => [a[0].logsumexp(1)],
        ["logsumexp_dim_keepdim"] = a => [a[0].logsumexp(-1, keepdim: true)],
        ["logsumexp_dims"] = a => [a[0].logsumexp([0, 2])],
        ["logsumexp_large"] = a => [a[0].logsumexp(1)],
        ["prod_all"] = a => [a[0].prod()],
        ["prod_all_keepdim"] = a => [a[0].prod(null, keepdim: true)],
        ["prod_dim"] = a => [a[0].prod(1)],
        ["prod_dim_keepdim"] = a => [a[0].prod(0, keepdim: true)],
        ["prod_int64"] = a => [a[0].prod()],
        ["all_all"] = a => [a[0].all()],
        ["all_all_true"] = a => [a[0].all()],
        ["all_dims"] = a => [a[0].all([0, 2])],
        ["all_dim_keepdim"] = a => [a[0].all([1], keepdim: true)],
        ["any_all"] = a => [a[0].any()],
        ["any_all_false"] = a => [a[0].any()],
        ["any_dims_negative"] = a => [a[0].any([-3, 1])],
        ["any_dims_keepdim"] = a => [a[0].any([0, 2], keepdim: true)],
        ["var_all"] = a => [a[0].var()],
        ["var_all_keepdim"] = a => [a[0].var(null, keepdim: true)],
        ["var_dim"] = a => [a[0].var([1])],
        ["var_dims_keepdim"] = a => [a[0].var([0, 2], keepdim: true)],
        ["var_correction0"] = a => [a[0].var([1], correction: 0)],
        ["std_all"] = a => [a[0].std()],
        ["std_dim"] = a => [a[0].std([0])],
        ["std_dims_keepdim_correction0"] = a => [a[0].std([0, 2], correction: 0, keepdim: true)],
        ["norm_2_all"] = a => [a[0].norm(2)],
        ["norm_1_all"] = a => [a[0].norm(1)],
        ["norm_inf_all"] = a => [a[0].norm(double.PositiveInfinity)],
        ["norm_3_all"] = a => [a[0].norm(3)],
        ["norm_all_keepdim"] = a => [a[0].norm(2, null, keepdim: true)],
        ["norm_2_dim"] = a => [a[0].norm(2, [1])],
        ["norm_dims_keepdim"] = a => [a[0].norm(2, [0, 2], keepdim: true)],
        ["argmax_all"] = a => [a[0].argmax()],
        ["argmax_dim"] = a => [a[0].argmax(1)],
        ["argmax_dim_keepdim"] = a => [a[0].argmax(0, keepdim: true)],
        ["argmax_ties"] = a => [a[0].argmax()],
        ["argmin_all"] = a => [a[0].argmin()],
        ["argmin_dim"] = a => [a[0].argmin(-1)],
        ["argmin_dim_keepdim"] = a => [a[0].argmin(1, keepdim: true)],
        ["max_dim"] = a => Pair(a[0].max(1)),
        ["max_dim_keepdim"] = a => Pair(a[0].max(0, keepdim: true)),
        ["min_dim"] = a => Pair(a[0].min(-1)),
        ["min_dim_keepdim"] = a => Pair(a[0].min(1, keepdim: true)),
        ["softmax_dim0"] = a => [a[0].softmax(0)],
        ["softmax_last"] = a => [a[0].softmax(-1)],
        ["softmax_3d_dim1"] = a => [a[0].softmax(1)],
        ["softmax_float64"] = a => [a[0].softmax(-1)],
        ["log_softmax_dim0"] = a => [a[0].log_softmax(0)],
        ["log_softmax_last"] = a => [a[0].log_softmax(-1)],
        ["log_softmax_large"] = a => [a[0].log_softmax(-1)],
        ["cumsum_dim0"] = a => [a[0].cumsum(0)],
        ["cumsum_last"] = a => [a[0].cumsum(-1)],
        ["cumsum_int64"] = a => [a[0].cumsum(0)],
        ["topk_largest"] = a => Pair(a[0].topk(2)),
        ["topk_smallest"] = a => Pair(a[0].topk(3, -1, largest: false)),
        ["topk_dim0"] = a => Pair(a[0].topk(2, 0)),
        ["topk_unsorted"] = a => Pair(a[0].topk(3, -1, sorted: false)),
        ["sort"] = a => Pair(a[0].sort()),
        ["sort_descending"] = a => Pair(a[0].sort(-1, descending: true)),
        ["sort_dim0"] = a => Pair(a[0].sort(0)),
        ["sort_stable"] = a => Pair(a[0].sort(stable: true)),
        ["sort_int64"] = a => Pair(a[0].sort(-1, descending: true, stable: true)),

        // ---- linear algebra ----
        ["matmul_vec_vec"] = a => [a[0].matmul(a[1])],
        ["matmul_mat_vec"] = a => [a[0].matmul(a[1])],
        ["matmul_vec_mat"] = a => [a[0].matmul(a[1])],
        ["matmul_mat_mat"] = a => [a[0].matmul(a[1])],
        ["matmul_batched_mat"] = a => [a[0].matmul(a[1])],
        ["matmul_batched_batched"] = a => [a[0].matmul(a[1])],
        ["matmul_broadcast"] = a => [a[0].matmul(a[1])],
        ["matmul_vec_batched"] = a => [a[0].matmul(a[1])],
        ["matmul_float64"] = a => [a[0].matmul(a[1])],
        ["matmul_transposed"] = a => [a[0].matmul(a[1].t())],
        ["matmul_int64"] = a => [a[0].matmul(a[1])],
        ["bmm"] = a => [a[0].bmm(a[1])],
        ["linear_bias"] = a => [F.linear(a[0], a[1], a[2])],
        ["linear_nobias"] = a => [F.linear(a[0], a[1])],
        ["linear_3d"] = a => [F.linear(a[0], a[1], a[2])],
        ["linear_1d"] = a => [F.linear(a[0], a[1], a[2])],

        // ---- indexing ----
        ["embedding"] = a => [F.embedding(a[0], a[1])],
        ["embedding_1d"] = a => [F.embedding(a[0], a[1])],
        ["index_select_dim0"] = a => [a[0].index_select(0, a[1])],
        ["index_select_dim1"] = a => [a[0].index_select(1, a[1])],
        ["index_select_int32_index"] = a => [a[0].index_select(0, a[1])],
        ["gather_dim1"] = a => [a[0].gather(1, a[1])],
        ["gather_dim0"] = a => [a[0].gather(0, a[1])],
        ["scatter_dim1"] = a => [a[0].scatter(1, a[1], a[2])],
        ["scatter_dim0"] = a => [a[0].scatter(0, a[1], a[2])],
        ["scatter_add_dim0"] = a => [a[0].scatter_add(0, a[1], a[2])],
        ["scatter_add_dim1"] = a => [a[0].scatter_add(1, a[1], a[2])],
        ["index_row"] = a => [a[0][1]],
        ["index_row_negative"] = a => [a[0][-1]],
        ["multinomial"] = a => Seeded(11, () => a[0].multinomial(3)),
        ["multinomial_replacement"] = a => Seeded(12, () => a[0].multinomial(8, replacement: true)),
        ["multinomial_1d"] = a => Seeded(13, () => a[0].multinomial(2)),

        // ---- shape ----
        ["view"] = a => [a[0].view(4, 3)],
        ["view_infer"] = a => [a[0].view(-1, 2)],
        ["reshape"] = a => [a[0].reshape(2, 6)],
        ["reshape_noncontiguous"] = a => [a[0].t().reshape(-1)],
        ["expand"] = a => [a[0].expand(3, 4)],
        ["expand_keep"] = a => [a[0].expand(2, -1, 4)],
        ["permute"] = a => [a[0].permute(2, 0, 1)],
        ["transpose"] = a => [a[0].transpose(0, 2)],
        ["t"] = a => [a[0].t()],
        ["narrow"] = a => [a[0].narrow(1, 1, 2)],
        ["slice_step2"] = a => [a[0].slice(1, 0, 4, 2)],
        ["slice_negative"] = a => [a[0].slice(1, -3, -1)],
        ["slice_dim0"] = a => [a[0].slice(0, 1, 3)],
        ["select"] = a => [a[0].select(1, 2)],
        ["select_negative"] = a => [a[0].select(-1, -1)],
        ["unsqueeze"] = a => [a[0].unsqueeze(0)],
        ["unsqueeze_negative"] = a => [a[0].unsqueeze(-1)],
        ["squeeze_all"] = a => [a[0].squeeze()],
        ["squeeze_dim"] = a => [a[0].squeeze(2)],
        ["flatten"] = a => [a[0].flatten()],
        ["flatten_range"] = a => [a[0].flatten(1, 2)],
        ["triu"] = a => [a[0].triu()],
        ["triu_diagonal1"] = a => [a[0].triu(1)],
        ["triu_batched"] = a => [a[0].triu()],
        ["tril"] = a => [a[0].tril()],
        ["tril_diagonal_neg1"] = a => [a[0].tril(-1)],
        ["triu_bool"] = a => [a[0].triu(1)],
        ["cat_dim0"] = a => Cat(a, 0),
        ["cat_dim1"] = a => Cat(a, 1),
        ["cat_three"] = a => Cat(a, -1),
        ["cat_int64"] = a => Cat(a, 0),
        ["stack_dim0"] = a => [torch.stack(a)],
        ["stack_last"] = a => [torch.stack(a, -1)],
        ["repeat"] = a => [a[0].repeat(2, 3)],
        ["repeat_new_dims"] = a => [a[0].repeat(2, 1, 2)],
        ["flip_dim0"] = a => [a[0].flip(0)],
        ["flip_dims"] = a => [a[0].flip(0, 1)],
        ["contiguous"] = a => [a[0].t().contiguous()],
        ["clone"] = a => [a[0].clone()],
        ["detach"] = a => [a[0].detach()],
        ["cpu"] = a => [a[0].cpu()],
        ["from_bytes"] = a =>
        {
            var bytes = new byte[a[0].nbytes()];
            a[0].CopyBytesTo(bytes);
            return [torch.from_bytes(bytes, a[0].shape, a[0].dtype)];
        },

        // ---- creation ----
        ["tensor_float32"] = _ => [torch.tensor(new[] { 1.5, -2.25, 3.0, 0.1, 0.2, 0.3 }, [2, 3], torch.float32)],
        ["tensor_float64_to_float16"] = _ => [torch.tensor(new[] { 0.1, 1.0 / 3.0, 65504.0, -2.5e-3 }).to(torch.float16)],
        ["tensor_int64"] = _ => [torch.tensor(new long[] { 1, -2, 3, 4 }, [2, 2])],
        ["tensor_bool"] = _ => [torch.tensor(new[] { true, false, true })],
        ["scalar_tensor"] = _ => [torch.scalar_tensor(2.5)],
        ["scalar_tensor_int64"] = _ => [torch.scalar_tensor(7, torch.int64)],
        ["zeros"] = _ => [torch.zeros([2, 3])],
        ["ones_int32"] = _ => [torch.ones([2, 3], torch.int32)],
        ["full"] = _ => [torch.full([2, 3], 1.25)],
        ["full_int64"] = _ => [torch.full([3], 7, torch.int64)],
        ["zeros_like"] = a => [torch.zeros_like(a[0])],
        ["ones_like"] = a => [torch.ones_like(a[0])],
        ["empty_shape"] = _ => [torch.tensor(torch.empty([2, 3, 4]).shape)],
        ["arange_end"] = _ => [torch.arange(5)],
        ["arange_float"] = _ => [torch.arange(0.5, 3.0, 0.5, torch.float32)],
        ["arange_step"] = _ => [torch.arange(1, 10, 3)],
        ["linspace"] = _ => [torch.linspace(-1.0, 1.0, 7)],
        ["rand"] = _ => Seeded(42, () => torch.rand([3, 4])),
        ["rand_float64"] = _ => Seeded(43, () => torch.rand([3, 4], torch.float64)),
        ["randn"] = _ => Seeded(44, () => torch.randn([3, 4])),
        ["randn_large"] = _ => Seeded(45, () => torch.randn([4, 8])),
        ["randn_float64"] = _ => Seeded(46, () => torch.randn([4, 5], torch.float64)),
        ["randint"] = _ => Seeded(47, () => torch.randint(0, 10, [3, 4])),
        ["randint_int32"] = _ => Seeded(48, () => torch.randint(-5, 5, [6], torch.int32)),
        ["rand_then_randn"] = _ => Seeded(49, () => torch.stack([torch.rand([5]), torch.randn([5])])),

        // ---- conversion ----
        ["to_float16"] = a => [a[0].to(torch.float16)],
        ["to_bfloat16"] = a => [a[0].to(torch.bfloat16)],
        ["to_float64"] = a => [a[0].to(torch.float64)],
        ["to_int32"] = a => [a[0].to(torch.int32)],
        ["to_int64"] = a => [a[0].to(torch.int64)],
        ["to_bool"] = a => [a[0].to(torch.@bool)],
        ["float64_to_float32"] = a => [a[0].to(torch.float32)],
        ["float16_to_float32"] = a => [a[0].to(torch.float32)],
        ["bfloat16_to_float32"] = a => [a[0].to(torch.float32)],
        ["float16_to_bfloat16"] = a => [a[0].to(torch.bfloat16)],
        ["int64_to_float32"] = a => [a[0].to(torch.float32)],
        ["int64_to_int32"] = a => [a[0].to(torch.int32)],
        ["int32_to_int64"] = a => [a[0].to(torch.int64)],
        ["int64_to_bool"] = a => [a[0].to(torch.@bool)],
        ["bool_to_float32"] = a => [a[0].to(torch.float32)],
        ["bool_to_int64"] = a => [a[0].to(torch.int64)],

        // ---- neural-network functions ----
        ["dropout"] = a => Seeded(21, () => F.dropout(a[0], 0.3, training: true)),
        ["dropout_eval"] = a => [F.dropout(a[0], 0.3, training: false)],
        ["f_softmax"] = a => [F.softmax(a[0], 1)],
        ["f_log_softmax"] = a => [F.log_softmax(a[0], 0)],
        ["f_silu"] = a => [F.silu(a[0])],
        ["f_gelu"] = a => [F.gelu(a[0])],
        ["f_gelu_tanh"] = a => [F.gelu(a[0], tanhApproximation: true)],
        ["f_embedding"] = a => [F.embedding(a[0], a[1])],
        ["f_linear"] = a => [F.linear(a[0], a[1])],
        ["cross_entropy"] = a => [F.cross_entropy(a[0], a[1])],
        ["cross_entropy_sum"] = a => [F.cross_entropy(a[0], a[1], torch.nn.Reduction.Sum)],
        ["cross_entropy_none"] = a => [F.cross_entropy(a[0], a[1], torch.nn.Reduction.None)],
        ["cross_entropy_ignore_index"] = a => [F.cross_entropy(a[0], a[1])],
        ["cross_entropy_ignore_custom"] = a => [F.cross_entropy(a[0], a[1], torch.nn.Reduction.None, ignore_index: 1)],
        ["cross_entropy_label_smoothing"] = a => [F.cross_entropy(a[0], a[1], label_smoothing: 0.1)],
        ["cross_entropy_label_smoothing_sum_ignore"] = a =>
            [F.cross_entropy(a[0], a[1], torch.nn.Reduction.Sum, ignore_index: -100, label_smoothing: 0.2)],
        ["cross_entropy_label_smoothing_none"] = a => [F.cross_entropy(a[0], a[1], torch.nn.Reduction.None, label_smoothing: 0.3)],
        ["cross_entropy_3d"] = a => [F.cross_entropy(a[0], a[1])],
        ["cross_entropy_float64"] = a => [F.cross_entropy(a[0], a[1])],
        ["logsigmoid"] = a => [F.logsigmoid(a[0])],
        ["softplus"] = a => [F.softplus(a[0])],
        ["softplus_beta_threshold"] = a => [F.softplus(a[0], beta: 2.0, threshold: 5.0)],
        ["mse_loss"] = a => [F.mse_loss(a[0], a[1])],
        ["mse_loss_sum"] = a => [F.mse_loss(a[0], a[1], torch.nn.Reduction.Sum)],
        ["mse_loss_none"] = a => [F.mse_loss(a[0], a[1], torch.nn.Reduction.None)],
    };

    public static TheoryData<string> CaseNames()
    {
        var names = new TheoryData<string>();
        foreach (var name in Golden.Cases.EnumerateObject().Select(c => c.Name)) names.Add(name);
        return names;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Op_matches_pytorch(string name)
    {
        Assert.True(Ops.TryGetValue(name, out var op), $"golden case '{name}' has no C# lambda in GoldenOpTests.Ops");
        var spec = Golden.Cases.GetProperty(name);
        var exact = spec.GetProperty("exact").GetBoolean();
        using var scope = torch.NewDisposeScope();

        var inputs = spec.GetProperty("inputs").EnumerateArray()
            .Select(i => Golden.MakeTensor(i, i.GetProperty("requires_grad").GetBoolean())).ToArray();
        var outputs = op(inputs);

        var expectedOutputs = spec.GetProperty("outputs").EnumerateArray().ToArray();
        Assert.Equal(expectedOutputs.Length, outputs.Length);
        for (var i = 0; i < outputs.Length; i++) Golden.AssertTensor(expectedOutputs[i], outputs[i], exact, $"{name}: output {i}");

        // Back-propagate sum_i sum(out_i * cotangent_i), as the script does.
        var cotangents = spec.GetProperty("cotangents").EnumerateArray().ToArray();
        Tensor? total = null;
        for (var i = 0; i < outputs.Length; i++)
        {
            var hasCotangent = cotangents[i].ValueKind != JsonValueKind.Null;
            Assert.True(hasCotangent == outputs[i].requires_grad,
                $"{name}: output {i} requires_grad is {outputs[i].requires_grad} but PyTorch's is {hasCotangent}");
            if (!hasCotangent) continue;
            var term = (outputs[i] * Golden.MakeTensor(cotangents[i], false)).sum();
            total = total is null ? term : total + term;
        }
        total?.backward();

        var grads = spec.GetProperty("grads").EnumerateArray().ToArray();
        for (var j = 0; j < inputs.Length; j++)
        {
            var grad = inputs[j].grad;
            if (grads[j].ValueKind == JsonValueKind.Null)
                Assert.True(grad is null, $"{name}: input {j} has a gradient but PyTorch's has none");
            else
                Golden.AssertTensor(grads[j], grad ?? throw new Xunit.Sdk.XunitException($"{name}: input {j} has no gradient"), exact, $"{name}: grad of input {j}");
        }
    }

    [Fact]
    public void Every_golden_case_has_a_lambda_and_every_lambda_a_case()
    {
        var cases = Golden.Cases.EnumerateObject().Select(c => c.Name).ToHashSet();
        var withoutLambda = cases.Where(c => !Ops.ContainsKey(c)).Order().ToList();
        var withoutCase = Ops.Keys.Where(k => !cases.Contains(k)).Order().ToList();
        Assert.True(withoutLambda.Count == 0, "golden cases without a C# lambda: " + string.Join(", ", withoutLambda));
        Assert.True(withoutCase.Count == 0, "C# lambdas without a golden case: " + string.Join(", ", withoutCase));
        Assert.True(cases.Count >= 300, $"only {cases.Count} golden cases");
    }

    [Fact]
    public void Golden_file_is_reproduced_by_its_script()
    {
        var script = Path.Combine(Golden.Folder, "make_golden.py");
        var outDir = Directory.CreateTempSubdirectory("onlinerl-golden-");
        try
        {
            var (code, output) = OnlineRl.TestSupport.PythonProcess.Run(new[] { "-c", "import torch" }, TimeSpan.FromSeconds(60));
            if (code != 0)
                Assert.Fail("python3-torch is missing: /usr/bin/python3 cannot import torch, so the golden values cannot be "
                            + "checked against their script (apt-get install -y python3-torch). Output: " + output);
            (code, output) = OnlineRl.TestSupport.PythonProcess.Run(new[] { script, outDir.FullName }, TimeSpan.FromSeconds(90));
            Assert.True(code == 0, "make_golden.py failed: " + output);
            var expected = File.ReadAllLines(Path.Combine(Golden.Folder, "ops.json"));
            var actual = File.ReadAllLines(Path.Combine(outDir.FullName, "ops.json"));
            var firstDifference = Enumerable.Range(0, Math.Min(expected.Length, actual.Length)).FirstOrDefault(i => expected[i] != actual[i], -1);
            Assert.True(firstDifference < 0 && expected.Length == actual.Length,
                firstDifference < 0
                    ? $"ops.json has {expected.Length} lines, the script made {actual.Length}"
                    : $"ops.json differs from the script's output at line {firstDifference + 1}: "
                      + $"{Golden.Head(expected[firstDifference])} vs {Golden.Head(actual[firstDifference])}; rerun make_golden.py");
            Assert.Equal(File.ReadAllBytes(Path.Combine(Golden.Folder, "ops.json")), File.ReadAllBytes(Path.Combine(outDir.FullName, "ops.json")));
        }
        finally
        {
            outDir.Delete(recursive: true);
        }
    }
}

/// <summary>Reads golden/ops.json and compares tensors with it.</summary>
internal static class Golden
{
    /// <summary>
    /// Absolute and relative tolerance for floats (cases not marked exact): a few float32 ulps. Nearly every
    /// case matches bit for bit; the known exceptions are matmuls that OpenBLAS runs with other kernels than
    /// the ones make_golden.py pins (OPENBLAS_CORETYPE), the gradient of 2.0 / x (Python computes it as
    /// x.reciprocal() * 2.0, the binding as div), and the sign of zero gradients of min() (Python's min
    /// backward against the binding's amin).
    /// </summary>
    internal const double Tolerance = 1e-6;

    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder, "ops.json"))));

    internal static string Folder => Path.Combine(AppContext.BaseDirectory, "golden");

    internal static JsonElement Cases => Document.Value.RootElement.GetProperty("cases");

    internal static JsonElement Optim => Document.Value.RootElement.GetProperty("optim");

    internal static string Head(string text) => text.Length <= 200 ? text : text[..200] + "...";

    internal static double Number(JsonElement value) => OnlineRl.TestSupport.GoldenJson.Number(value, "ops.json", booleans: true);

    internal static long[] Shape(JsonElement spec) => spec.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();

    internal static double[] Doubles(JsonElement spec) => spec.GetProperty("data").EnumerateArray().Select(Number).ToArray();

    /// <summary>A tensor holding a golden tensor's values, in its dtype.</summary>
    internal static Tensor MakeTensor(JsonElement spec, bool requiresGrad)
    {
        var shape = Shape(spec);
        var values = Doubles(spec);
        return spec.GetProperty("dtype").GetString() switch
        {
            "float32" => torch.tensor(values.Select(v => (float)v).ToArray(), shape, requires_grad: requiresGrad),
            "float64" => torch.tensor(values, shape, requires_grad: requiresGrad),
            "float16" => torch.tensor(values.Select(v => (Half)v).ToArray(), shape, requires_grad: requiresGrad),
            "bfloat16" => torch.tensor(values.Select(v => BFloat16.FromSingle((float)v)).ToArray(), shape, requires_grad: requiresGrad),
            "int64" => torch.tensor(values.Select(v => (long)v).ToArray(), shape),
            "int32" => torch.tensor(values.Select(v => (int)v).ToArray(), shape),
            "bool" => torch.tensor(values.Select(v => v != 0).ToArray(), shape),
            var other => throw new NotSupportedException($"dtype {other} in ops.json"),
        };
    }

    /// <summary>The values of a tensor as doubles, read with the C# element type of its dtype.</summary>
    internal static double[] Read(Tensor t) => t.dtype switch
    {
        ScalarType.Float32 => t.data<float>().Select(v => (double)v).ToArray(),
        ScalarType.Float64 => t.data<double>(),
        ScalarType.Float16 => t.data<Half>().Select(v => (double)v).ToArray(),
        ScalarType.BFloat16 => t.data<BFloat16>().Select(v => (double)v.ToSingle()).ToArray(),
        ScalarType.Int64 => t.data<long>().Select(v => (double)v).ToArray(),
        ScalarType.Int32 => t.data<int>().Select(v => (double)v).ToArray(),
        ScalarType.Bool => t.data<bool>().Select(v => v ? 1.0 : 0.0).ToArray(),
        var other => throw new NotSupportedException($"dtype {other.Name()}"),
    };

    /// <summary>
    /// Same dtype, shape and values: integers and bools exactly, floats bit for bit when <paramref name="exact"/>,
    /// else within <see cref="Tolerance"/> absolute plus relative (NaN matches NaN, infinities must be equal).
    /// </summary>
    internal static void AssertTensor(JsonElement expected, Tensor actual, bool exact, string what)
    {
        var dtype = expected.GetProperty("dtype").GetString();
        Assert.True(dtype == actual.dtype.Name(), $"{what}: dtype {actual.dtype.Name()}, expected {dtype}");
        var shape = Shape(expected);
        Assert.True(shape.SequenceEqual(actual.shape), $"{what}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", shape)}]");
        AssertValues(Doubles(expected), Read(actual), exact || !actual.dtype.IsFloatingPoint(), what);
    }

    internal static void AssertValues(double[] expected, double[] actual, bool exact, string what, double tolerance = Tolerance)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (var k = 0; k < expected.Length; k++)
        {
            double e = expected[k], a = actual[k];
            var ok = double.IsNaN(e) ? double.IsNaN(a)
                : exact || double.IsInfinity(e) ? BitConverter.DoubleToInt64Bits(e) == BitConverter.DoubleToInt64Bits(a)
                : Math.Abs(a - e) <= tolerance + tolerance * Math.Abs(e);
            Assert.True(ok, $"{what}: element {k} is {a:R}, expected {e:R}" + (exact ? " (exactly)" : $" (tolerance {tolerance})"));
        }
    }
}
