using System.Runtime.InteropServices;

namespace OnlineRl.Torch;

/// <summary>
/// Entry points named as in PyTorch: tensor creation, combination, seeds, threads, grad mode and
/// dispose scopes. Typical use: <c>using static OnlineRl.Torch.torch;</c>.
/// </summary>
public static partial class torch
{
    /// <summary>float32, the default floating-point type.</summary>
    public const ScalarType float32 = ScalarType.Float32;
    /// <summary>float64.</summary>
    public const ScalarType float64 = ScalarType.Float64;
    /// <summary>float16.</summary>
    public const ScalarType float16 = ScalarType.Float16;
    /// <summary>bfloat16.</summary>
    public const ScalarType bfloat16 = ScalarType.BFloat16;
    /// <summary>int64, the type of indices.</summary>
    public const ScalarType int64 = ScalarType.Int64;
    /// <summary>int32.</summary>
    public const ScalarType int32 = ScalarType.Int32;
    /// <summary>bool.</summary>
    public const ScalarType @bool = ScalarType.Bool;

    static torch()
    {
        // libtorch starts with one intra-op thread; use every core unless the user says otherwise.
        var configured = Environment.GetEnvironmentVariable("ONLINERL_NUM_THREADS");
        set_num_threads(int.TryParse(configured, out var n) && n > 0 ? n : Environment.ProcessorCount);
    }

    /// <summary>The libtorch version the shim was built against, e.g. "1.13.0".</summary>
    public static string version => Marshal.PtrToStringUTF8(Native.orl_torch_version()) ?? "unknown";

    /// <summary>Tensors created and not yet disposed or finalized, process-wide (for leak tests).</summary>
    public static long LiveTensorCount => TensorHandle.LiveCount;

    /// <summary>
    /// Tensors that were never disposed and were freed by the garbage collector instead, process-wide: a
    /// count that grows means a code path forgets to dispose (or scope) its tensors.
    /// </summary>
    public static long FinalizedTensorCount => TensorHandle.FinalizedCount;

    // ---- creation from C# data ----------------------------------------------------------------

    /// <summary>
    /// A tensor holding a copy of <paramref name="values"/> with shape <paramref name="shape"/> (1-D when
    /// null), optionally converted to <paramref name="dtype"/> and placed on <paramref name="device"/>.
    /// </summary>
    public static unsafe Tensor tensor<T>(ReadOnlySpan<T> values, long[]? shape = null, ScalarType? dtype = null,
        Device? device = null, bool requires_grad = false) where T : unmanaged
    {
        shape ??= new long[] { values.Length };
        var count = shape.Aggregate(1L, (a, b) => a * b);
        if (count != values.Length)
            throw new TorchException($"shape [{string.Join(", ", shape)}] holds {count} elements but {values.Length} values were given");
        var stored = ScalarTypeExtensions.Of<T>();
        var target = dtype ?? stored;
        var place = device ?? Device.CPU;
        var convert = target != stored;
        IntPtr raw;
        fixed (T* p = values)
        {
            raw = Native.orl_from_buffer(p, (long)values.Length * sizeof(T), shape, shape.Length, (int)stored,
                (int)place.Type, place.Index, requires_grad && !convert ? 1 : 0);
        }
        var result = Tensor.Wrap(raw);
        if (!convert) return result;
        using (result)
        {
            var converted = result.to(place, target);
            if (requires_grad) converted.requires_grad = true;
            return converted;
        }
    }

    /// <summary>A tensor holding a copy of <paramref name="values"/>; see the span overload.</summary>
    public static Tensor tensor<T>(T[] values, long[]? shape = null, ScalarType? dtype = null, Device? device = null,
        bool requires_grad = false) where T : unmanaged =>
        tensor<T>(values.AsSpan(), shape, dtype, device, requires_grad);

    /// <summary>
    /// A tensor of <paramref name="dtype"/> and <paramref name="shape"/> holding a copy of raw
    /// little-endian <paramref name="bytes"/> (e.g. from a checkpoint file), placed on <paramref name="device"/>.
    /// </summary>
    public static unsafe Tensor from_bytes(ReadOnlySpan<byte> bytes, long[] shape, ScalarType dtype, Device? device = null)
    {
        var place = device ?? Device.CPU;
        fixed (byte* p = bytes)
            return Tensor.Wrap(Native.orl_from_buffer(p, bytes.Length, shape, shape.Length, (int)dtype, (int)place.Type, place.Index, 0));
    }

    /// <summary>A 0-dim tensor holding <paramref name="value"/> (float32 unless <paramref name="dtype"/> says otherwise).</summary>
    public static Tensor scalar_tensor(double value, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var place = device ?? Device.CPU;
        return Tensor.Wrap(Native.orl_scalar_tensor(value, 0, (int)dtype, (int)place.Type, place.Index));
    }

    // ---- creation by shape --------------------------------------------------------------------

    private static Tensor New(FillKind kind, long[] shape, ScalarType dtype, Device? device, bool requiresGrad)
    {
        var place = device ?? Device.CPU;
        return Tensor.Wrap(Native.orl_new((int)kind, shape, shape.Length, (int)dtype, (int)place.Type, place.Index, requiresGrad ? 1 : 0));
    }

    /// <summary>Uninitialised memory of the given shape.</summary>
    public static Tensor empty(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null, bool requires_grad = false) =>
        New(FillKind.Empty, shape, dtype, device, requires_grad);

    /// <summary>Zeros of the given shape.</summary>
    public static Tensor zeros(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null, bool requires_grad = false) =>
        New(FillKind.Zeros, shape, dtype, device, requires_grad);

    /// <summary>Ones of the given shape.</summary>
    public static Tensor ones(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null, bool requires_grad = false) =>
        New(FillKind.Ones, shape, dtype, device, requires_grad);

    /// <summary>Samples of U[0, 1) from the global generator.</summary>
    public static Tensor rand(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null, bool requires_grad = false) =>
        New(FillKind.Rand, shape, dtype, device, requires_grad);

    /// <summary>Samples of N(0, 1) from the global generator.</summary>
    public static Tensor randn(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null, bool requires_grad = false) =>
        New(FillKind.Randn, shape, dtype, device, requires_grad);

    /// <summary>Every element equal to <paramref name="value"/>.</summary>
    public static Tensor full(long[] shape, double value, ScalarType dtype = ScalarType.Float32, Device? device = null, bool requires_grad = false)
    {
        var place = device ?? Device.CPU;
        return Tensor.Wrap(Native.orl_full(shape, shape.Length, value, dtype.IsFloatingPoint() ? 0 : 1, (int)dtype, (int)place.Type, place.Index, requires_grad ? 1 : 0));
    }

    /// <summary>Zeros with the shape, type and device of <paramref name="like"/>.</summary>
    public static Tensor zeros_like(Tensor like) => zeros(like.shape, like.dtype, like.device);

    /// <summary>Ones with the shape, type and device of <paramref name="like"/>.</summary>
    public static Tensor ones_like(Tensor like) => ones(like.shape, like.dtype, like.device);

    /// <summary>Integers from U{low, ..., high - 1}.</summary>
    public static Tensor randint(long low, long high, long[] shape, ScalarType dtype = ScalarType.Int64, Device? device = null)
    {
        var place = device ?? Device.CPU;
        return Tensor.Wrap(Native.orl_randint(low, high, shape, shape.Length, (int)dtype, (int)place.Type, place.Index));
    }

    /// <summary>start, start + step, ... below end (int64 by default, as for Python integers).</summary>
    public static Tensor arange(double start, double end, double step = 1, ScalarType dtype = ScalarType.Int64, Device? device = null)
    {
        var place = device ?? Device.CPU;
        return Tensor.Wrap(Native.orl_arange(start, end, step, (int)dtype, (int)place.Type, place.Index));
    }

    /// <summary>0, 1, ..., end - 1.</summary>
    public static Tensor arange(long end, ScalarType dtype = ScalarType.Int64, Device? device = null) => arange(0, end, 1, dtype, device);

    /// <summary><paramref name="steps"/> evenly spaced values from start to end inclusive.</summary>
    public static Tensor linspace(double start, double end, long steps, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var place = device ?? Device.CPU;
        return Tensor.Wrap(Native.orl_linspace(start, end, steps, (int)dtype, (int)place.Type, place.Index));
    }

    // ---- combination --------------------------------------------------------------------------

    /// <summary>Tensors joined along an existing dimension.</summary>
    public static Tensor cat(IReadOnlyList<Tensor> tensors, long dim = 0)
    {
        using var handles = new HandleArray(tensors);
        return Tensor.Wrap(Native.orl_cat(handles.Pointers, tensors.Count, dim));
    }

    /// <summary>Tensors of one shape joined along a new dimension.</summary>
    public static Tensor stack(IReadOnlyList<Tensor> tensors, long dim = 0)
    {
        using var handles = new HandleArray(tensors);
        return Tensor.Wrap(Native.orl_stack(handles.Pointers, tensors.Count, dim));
    }

    /// <summary><paramref name="a"/> where <paramref name="condition"/> is true, else <paramref name="b"/>.</summary>
    public static Tensor where(Tensor condition, Tensor a, Tensor b) => Tensor.Wrap(Native.orl_where(condition.Handle, a.Handle, b.Handle));

    /// <summary><paramref name="baseValue"/> raised element-wise to <paramref name="exponent"/>.</summary>
    public static Tensor pow(double baseValue, Tensor exponent) =>
        Tensor.Wrap(Native.orl_scalar_binary((int)BinaryOp.Pow, baseValue, 0, exponent.Handle));

    // ---- process-wide settings ----------------------------------------------------------------

    /// <summary>Threads libtorch uses inside one op (OpenMP/OpenBLAS). Defaults to all cores.</summary>
    public static void set_num_threads(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "need at least one thread");
        Native.orl_set_num_threads(threads);
    }

    /// <summary>Threads libtorch uses inside one op.</summary>
    public static int get_num_threads() => Native.orl_get_num_threads();

    /// <summary>Seeds the global CPU (and every CUDA) generator.</summary>
    public static void manual_seed(long seed) => Native.Check(Native.orl_manual_seed(unchecked((ulong)seed)));

    /// <summary>The global CPU generator's state as a uint8 tensor (torch.get_rng_state); the caller owns it.</summary>
    public static Tensor get_rng_state() => Tensor.Wrap(Native.orl_default_generator_get_state(IntPtr.Zero));

    /// <summary>Restores the global CPU generator to a state read by <see cref="get_rng_state"/>.</summary>
    public static void set_rng_state(Tensor state) => Native.Check(Native.orl_default_generator_set_state(IntPtr.Zero, state.Handle));

    /// <summary>A random permutation of 0..n-1 (int64) drawn from <paramref name="generator"/>.</summary>
    public static Tensor randperm(long n, Generator generator) => Tensor.Wrap(Native.orl_randperm_gen(n, generator.Handle));

    /// <summary>Makes ops pick deterministic algorithms (and fail where none exists).</summary>
    public static void use_deterministic_algorithms(bool enabled) => Native.Check(Native.orl_set_deterministic(enabled ? 1 : 0));

    /// <summary>Whether autograd records operations on this thread.</summary>
    public static bool is_grad_enabled() => Native.orl_grad_enabled() != 0;

    /// <summary>
    /// Turns autograd recording off on this thread until the returned object is disposed:
    /// <c>using (torch.no_grad()) { ... }</c>. Grad mode is per OS thread, so do not await inside it.
    /// </summary>
    public static GradModeScope no_grad() => new(false);

    /// <summary>Turns autograd recording on until the returned object is disposed.</summary>
    public static GradModeScope enable_grad() => new(true);

    /// <summary>Opens a scope that disposes every tensor created on this thread until it is disposed.</summary>
    public static DisposeScope NewDisposeScope() => new();

    /// <summary>CUDA queries.</summary>
    public static class cuda
    {
        /// <summary>True when libtorch was built with CUDA and a GPU is present.</summary>
        public static bool is_available() => Native.orl_cuda_is_available() != 0 && device_count() > 0;

        /// <summary>Number of visible GPUs.</summary>
        public static int device_count() => Native.orl_cuda_device_count();
    }
}

/// <summary>Restores the previous grad mode on dispose; see <see cref="torch.no_grad"/>.</summary>
public sealed class GradModeScope : IDisposable
{
    private readonly bool previous;
    private bool disposed;

    internal GradModeScope(bool enabled)
    {
        previous = Native.orl_grad_enabled() != 0;
        Native.orl_set_grad_enabled(enabled ? 1 : 0);
    }

    /// <summary>Restores the grad mode that was active before.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Native.orl_set_grad_enabled(previous ? 1 : 0);
    }
}
