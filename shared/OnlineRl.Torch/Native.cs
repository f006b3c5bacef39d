using System.Runtime.InteropServices;

namespace OnlineRl.Torch;

/// <summary>Op codes of the shim's element-wise entry points; the numbers mirror native/ops.cpp.</summary>
internal enum UnaryOp
{
    Neg = 0, Exp, Log, Sqrt, Rsqrt, Abs, Sigmoid, Tanh, Relu, Silu,
    Gelu, GeluTanh, Sin, Cos, LogicalNot, Floor, Ceil, Round, Sign, Square,
    Reciprocal, Log1p, Expm1, IsNan, IsInf, IsFinite,
}

/// <summary>Binary op codes; the numbers mirror native/ops.cpp.</summary>
internal enum BinaryOp
{
    Add = 0, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt,
    Le, Gt, Ge, LogicalAnd, LogicalOr, Remainder, FloorDivide,
}

/// <summary>Reduction op codes; the numbers mirror native/ops.cpp.</summary>
internal enum ReduceOp { Sum = 0, Mean, Amax, Amin, LogSumExp, Prod, All, Any }

/// <summary>Allocation kinds of <c>orl_new</c>.</summary>
internal enum FillKind { Empty = 0, Zeros, Ones, Rand, Randn }

/// <summary>
/// The P/Invoke surface of libonlinerl_torch.so. Tensor-returning functions return IntPtr.Zero on
/// failure and status-returning ones -1; the message is then read with <see cref="orl_last_error"/>.
/// </summary>
internal static partial class Native
{
    private const string Lib = "onlinerl_torch";

    [LibraryImport(Lib)] internal static partial IntPtr orl_last_error();
    [LibraryImport(Lib)] internal static partial void orl_free(IntPtr t);
    [LibraryImport(Lib)] internal static partial IntPtr orl_alias(TensorHandle t);

    [LibraryImport(Lib)] internal static unsafe partial IntPtr orl_from_buffer(void* data, long nbytes, ReadOnlySpan<long> shape, int ndim, int dtype, int deviceType, int deviceIndex, int requiresGrad);
    [LibraryImport(Lib)] internal static partial IntPtr orl_scalar_tensor(double value, int isIntegral, int dtype, int deviceType, int deviceIndex);
    [LibraryImport(Lib)] internal static partial IntPtr orl_new(int kind, ReadOnlySpan<long> shape, int ndim, int dtype, int deviceType, int deviceIndex, int requiresGrad);
    [LibraryImport(Lib)] internal static partial IntPtr orl_full(ReadOnlySpan<long> shape, int ndim, double value, int isIntegral, int dtype, int deviceType, int deviceIndex, int requiresGrad);
    [LibraryImport(Lib)] internal static partial IntPtr orl_arange(double start, double end, double step, int dtype, int deviceType, int deviceIndex);
    [LibraryImport(Lib)] internal static partial IntPtr orl_randint(long low, long high, ReadOnlySpan<long> shape, int ndim, int dtype, int deviceType, int deviceIndex);
    [LibraryImport(Lib)] internal static partial IntPtr orl_linspace(double start, double end, long steps, int dtype, int deviceType, int deviceIndex);

    [LibraryImport(Lib)] internal static partial int orl_dim(TensorHandle t);
    [LibraryImport(Lib)] internal static partial void orl_sizes(TensorHandle t, Span<long> output);
    [LibraryImport(Lib)] internal static partial void orl_strides(TensorHandle t, Span<long> output);
    [LibraryImport(Lib)] internal static partial int orl_dtype(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_device_type(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_device_index(TensorHandle t);
    [LibraryImport(Lib)] internal static partial long orl_numel(TensorHandle t);
    [LibraryImport(Lib)] internal static partial long orl_element_size(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_is_contiguous(TensorHandle t);
    [LibraryImport(Lib)] internal static partial IntPtr orl_data_ptr(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_item(TensorHandle t, out double value);
    [LibraryImport(Lib)] internal static partial int orl_item_int64(TensorHandle t, out long value);
    [LibraryImport(Lib)] internal static unsafe partial int orl_copy_to_buffer(TensorHandle t, void* destination, long nbytes);

    [LibraryImport(Lib)] internal static partial IntPtr orl_to(TensorHandle t, int dtype, int deviceType, int deviceIndex, int copy);
    [LibraryImport(Lib)] internal static partial IntPtr orl_contiguous(TensorHandle t);
    [LibraryImport(Lib)] internal static partial IntPtr orl_clone(TensorHandle t);

    [LibraryImport(Lib)] internal static partial int orl_set_requires_grad(TensorHandle t, int value);
    [LibraryImport(Lib)] internal static partial int orl_requires_grad(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_is_leaf(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_backward(TensorHandle t, IntPtr gradient, int retainGraph, int createGraph);
    [LibraryImport(Lib)] internal static partial int orl_grad(TensorHandle t, out IntPtr gradient);
    [LibraryImport(Lib)] internal static partial int orl_set_grad(TensorHandle t, IntPtr gradient);
    [LibraryImport(Lib)] internal static partial IntPtr orl_detach(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_grad_enabled();
    [LibraryImport(Lib)] internal static partial void orl_set_grad_enabled(int enabled);

    [LibraryImport(Lib)] internal static partial IntPtr orl_generator_new(ulong seed, int deviceType, int deviceIndex);
    [LibraryImport(Lib)] internal static partial void orl_generator_free(IntPtr generator);
    [LibraryImport(Lib)] internal static partial IntPtr orl_generator_get_state(GeneratorHandle generator);
    [LibraryImport(Lib)] internal static partial int orl_generator_set_state(GeneratorHandle generator, TensorHandle state);
    [LibraryImport(Lib, EntryPoint = "orl_generator_get_state")] internal static partial IntPtr orl_default_generator_get_state(IntPtr none);
    [LibraryImport(Lib, EntryPoint = "orl_generator_set_state")] internal static partial int orl_default_generator_set_state(IntPtr none, TensorHandle state);
    [LibraryImport(Lib)] internal static partial IntPtr orl_randperm_gen(long n, GeneratorHandle generator);
    [LibraryImport(Lib)] internal static partial IntPtr orl_multinomial_gen(TensorHandle probabilities, long samples, int replacement, GeneratorHandle generator);
    [LibraryImport(Lib)] internal static partial void orl_set_num_threads(int n);
    [LibraryImport(Lib)] internal static partial int orl_get_num_threads();
    [LibraryImport(Lib)] internal static partial int orl_manual_seed(ulong seed);
    [LibraryImport(Lib)] internal static partial int orl_set_deterministic(int enabled);
    [LibraryImport(Lib)] internal static partial int orl_cuda_is_available();
    [LibraryImport(Lib)] internal static partial int orl_cuda_device_count();
    [LibraryImport(Lib)] internal static partial IntPtr orl_torch_version();

    [LibraryImport(Lib)] internal static partial IntPtr orl_unary(int op, TensorHandle x);
    [LibraryImport(Lib)] internal static partial IntPtr orl_binary(int op, TensorHandle a, TensorHandle b);
    [LibraryImport(Lib)] internal static partial IntPtr orl_binary_scalar(int op, TensorHandle a, double b, int isIntegral);
    [LibraryImport(Lib)] internal static partial IntPtr orl_scalar_binary(int op, double a, int isIntegral, TensorHandle b);
    [LibraryImport(Lib)] internal static partial int orl_binary_(int op, TensorHandle a, TensorHandle b);
    [LibraryImport(Lib)] internal static partial int orl_binary_scalar_(int op, TensorHandle a, double b, int isIntegral);
    [LibraryImport(Lib)] internal static partial int orl_zero_(TensorHandle t);
    [LibraryImport(Lib)] internal static partial int orl_fill_(TensorHandle t, double value, int isIntegral);
    [LibraryImport(Lib)] internal static partial int orl_copy_(TensorHandle destination, TensorHandle source);
    [LibraryImport(Lib)] internal static partial int orl_uniform_(TensorHandle t, double low, double high);
    [LibraryImport(Lib)] internal static partial int orl_normal_(TensorHandle t, double mean, double std);
    [LibraryImport(Lib)] internal static partial IntPtr orl_clamp(TensorHandle x, int hasMin, double min, int hasMax, double max);
    [LibraryImport(Lib)] internal static partial IntPtr orl_clamp_tensor(TensorHandle x, IntPtr min, IntPtr max);
    [LibraryImport(Lib)] internal static partial IntPtr orl_where(TensorHandle condition, TensorHandle a, TensorHandle b);
    [LibraryImport(Lib)] internal static partial IntPtr orl_masked_fill(TensorHandle x, TensorHandle mask, double value, int isIntegral);

    [LibraryImport(Lib)] internal static partial IntPtr orl_reduce(int op, TensorHandle x, ReadOnlySpan<long> dims, int ndims, int keepdim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_var(TensorHandle x, ReadOnlySpan<long> dims, int ndims, long correction, int keepdim, int takeSqrt);
    [LibraryImport(Lib)] internal static partial IntPtr orl_norm(TensorHandle x, double p, ReadOnlySpan<long> dims, int ndims, int keepdim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_argextreme(TensorHandle x, int isMax, int hasDim, long dim, int keepdim);
    [LibraryImport(Lib)] internal static partial int orl_max_dim(TensorHandle x, long dim, int keepdim, int isMax, out IntPtr values, out IntPtr indices);
    [LibraryImport(Lib)] internal static partial IntPtr orl_softmax(TensorHandle x, long dim, int log);
    [LibraryImport(Lib)] internal static partial IntPtr orl_cumsum(TensorHandle x, long dim);
    [LibraryImport(Lib)] internal static partial int orl_topk(TensorHandle x, long k, long dim, int largest, int sorted, out IntPtr values, out IntPtr indices);
    [LibraryImport(Lib)] internal static partial int orl_sort(TensorHandle x, long dim, int descending, int stable, out IntPtr values, out IntPtr indices);

    [LibraryImport(Lib)] internal static partial IntPtr orl_matmul(TensorHandle a, TensorHandle b);
    [LibraryImport(Lib)] internal static partial IntPtr orl_bmm(TensorHandle a, TensorHandle b);
    [LibraryImport(Lib)] internal static partial IntPtr orl_linear(TensorHandle x, TensorHandle weight, IntPtr bias);

    [LibraryImport(Lib)] internal static partial IntPtr orl_embedding(TensorHandle weight, TensorHandle indices);
    [LibraryImport(Lib)] internal static partial IntPtr orl_index_select(TensorHandle x, long dim, TensorHandle index);
    [LibraryImport(Lib)] internal static partial IntPtr orl_gather(TensorHandle x, long dim, TensorHandle index);
    [LibraryImport(Lib)] internal static partial IntPtr orl_scatter(TensorHandle x, long dim, TensorHandle index, TensorHandle source, int accumulate);
    [LibraryImport(Lib)] internal static partial IntPtr orl_masked_select(TensorHandle x, TensorHandle mask);
    [LibraryImport(Lib)] internal static partial IntPtr orl_multinomial(TensorHandle probabilities, long samples, int replacement);

    [LibraryImport(Lib)] internal static partial IntPtr orl_view(TensorHandle x, ReadOnlySpan<long> shape, int ndim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_reshape(TensorHandle x, ReadOnlySpan<long> shape, int ndim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_expand(TensorHandle x, ReadOnlySpan<long> shape, int ndim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_permute(TensorHandle x, ReadOnlySpan<long> dims, int ndim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_transpose(TensorHandle x, long dim0, long dim1);
    [LibraryImport(Lib)] internal static partial IntPtr orl_narrow(TensorHandle x, long dim, long start, long length);
    [LibraryImport(Lib)] internal static partial IntPtr orl_slice(TensorHandle x, long dim, long start, long end, long step);
    [LibraryImport(Lib)] internal static partial IntPtr orl_select(TensorHandle x, long dim, long index);
    [LibraryImport(Lib)] internal static partial IntPtr orl_unsqueeze(TensorHandle x, long dim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_squeeze(TensorHandle x, int hasDim, long dim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_flatten(TensorHandle x, long start, long end);
    [LibraryImport(Lib)] internal static partial IntPtr orl_triangle(TensorHandle x, long diagonal, int upper);
    [LibraryImport(Lib)] internal static partial IntPtr orl_cat(ReadOnlySpan<IntPtr> tensors, int count, long dim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_stack(ReadOnlySpan<IntPtr> tensors, int count, long dim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_repeat(TensorHandle x, ReadOnlySpan<long> repeats, int ndim);
    [LibraryImport(Lib)] internal static partial IntPtr orl_flip(TensorHandle x, ReadOnlySpan<long> dims, int ndim);

    [LibraryImport(Lib)] internal static partial IntPtr orl_dropout(TensorHandle x, double p, int train);
    [LibraryImport(Lib)] internal static partial IntPtr orl_cross_entropy(TensorHandle logits, TensorHandle target, int reduction, long ignoreIndex, double labelSmoothing);
    [LibraryImport(Lib)] internal static partial IntPtr orl_mse_loss(TensorHandle input, TensorHandle target, int reduction);
    [LibraryImport(Lib)] internal static partial IntPtr orl_log_sigmoid(TensorHandle x);
    [LibraryImport(Lib)] internal static partial IntPtr orl_softplus(TensorHandle x, double beta, double threshold);

    [LibraryImport(Lib)] internal static partial int orl_adamw_step(ReadOnlySpan<IntPtr> parameters, ReadOnlySpan<IntPtr> expAvgs, ReadOnlySpan<IntPtr> expAvgSqs, Span<long> steps, int count, double lr, double beta1, double beta2, double eps, double weightDecay);
    [LibraryImport(Lib)] internal static partial int orl_clip_grad_norm(ReadOnlySpan<IntPtr> parameters, int count, double maxNorm, double normType, out double totalNorm);

    /// <summary>The message of the last failure on this thread.</summary>
    internal static string LastError() => Marshal.PtrToStringUTF8(orl_last_error()) ?? "(no message)";

    /// <summary>Throws the pending libtorch error when a status call failed.</summary>
    internal static void Check(int status)
    {
        if (status != 0) throw new TorchException(LastError());
    }
}
