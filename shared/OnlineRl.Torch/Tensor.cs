using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace OnlineRl.Torch;

/// <summary>
/// A libtorch tensor. Owns one native reference, released by <see cref="Dispose"/> (or by the open
/// <see cref="DisposeScope"/> it was created in, or last of all by the finalizer). Method names follow
/// PyTorch so that code reads like its Python counterpart.
/// </summary>
public partial class Tensor : IDisposable
{
    private TensorHandle handle;

    internal Tensor(IntPtr raw)
    {
        handle = new TensorHandle(raw);
        DisposeScope.Current?.Add(this);
    }

    /// <summary>Wraps a shim result, throwing libtorch's message when the call failed.</summary>
    internal static Tensor Wrap(IntPtr raw) =>
        raw == IntPtr.Zero ? throw new TorchException(Native.LastError()) : new Tensor(raw);

    internal DisposeScope? OwningScope { get; set; }

    /// <summary>The native handle; throws a clear error once the tensor has been disposed.</summary>
    internal TensorHandle Handle => handle.IsClosed
        ? throw new ObjectDisposedException(nameof(Tensor), "This tensor was disposed (directly or by its DisposeScope) and can no longer be used.")
        : handle;

    /// <summary>Points this object at another native tensor, releasing the old one (used by Module.to).</summary>
    internal void ReplaceHandle(IntPtr raw)
    {
        var old = handle;
        handle = new TensorHandle(raw);
        old.Dispose();
    }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => handle.IsClosed;

    /// <summary>Releases the native tensor now.</summary>
    public void Dispose()
    {
        handle.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Removes this tensor from its dispose scope: the caller now owns it.</summary>
    public Tensor DetachFromDisposeScope()
    {
        OwningScope = null;
        return this;
    }

    /// <summary>Hands this tensor to the scope enclosing its current one.</summary>
    public Tensor MoveToOuterDisposeScope() => OwningScope?.MoveToOuter(this) ?? this;

    // ---- queries ------------------------------------------------------------------------------

    /// <summary>Number of dimensions.</summary>
    public int dim() => Native.orl_dim(Handle);

    /// <summary>Number of dimensions.</summary>
    public int ndim => dim();

    /// <summary>The sizes of every dimension.</summary>
    public long[] shape
    {
        get
        {
            var h = Handle;
            var sizes = new long[Native.orl_dim(h)];
            Native.orl_sizes(h, sizes);
            return sizes;
        }
    }

    /// <summary>The size of dimension <paramref name="dimension"/> (negative counts from the end).</summary>
    public long size(int dimension)
    {
        var sizes = shape;
        var d = dimension < 0 ? dimension + sizes.Length : dimension;
        if (d < 0 || d >= sizes.Length)
            throw new TorchException($"Dimension out of range (expected to be in range of [{-sizes.Length}, {sizes.Length - 1}], but got {dimension})");
        return sizes[d];
    }

    /// <summary>Element strides of every dimension.</summary>
    public long[] stride()
    {
        var h = Handle;
        var strides = new long[Native.orl_dim(h)];
        Native.orl_strides(h, strides);
        return strides;
    }

    /// <summary>Total number of elements.</summary>
    public long numel() => Native.orl_numel(Handle);

    /// <summary>The element type.</summary>
    public ScalarType dtype => (ScalarType)Native.orl_dtype(Handle);

    /// <summary>Where the tensor lives.</summary>
    public Device device
    {
        get
        {
            var h = Handle;
            return new Device((DeviceType)Native.orl_device_type(h), Native.orl_device_index(h));
        }
    }

    /// <summary>True when the elements are laid out densely in row-major order.</summary>
    public bool is_contiguous() => Native.orl_is_contiguous(Handle) != 0;

    // ---- reading values -----------------------------------------------------------------------

    /// <summary>The single element of a one-element tensor, as a double.</summary>
    public double ToDouble()
    {
        Native.Check(Native.orl_item(Handle, out var value));
        return value;
    }

    /// <summary>The single element of a one-element tensor, as a float.</summary>
    public float ToSingle() => (float)ToDouble();

    /// <summary>The single element of a one-element tensor, as a long.</summary>
    public long ToInt64()
    {
        Native.Check(Native.orl_item_int64(Handle, out var value));
        return value;
    }

    /// <summary>The single element, converted to <typeparamref name="T"/> (float, double, long, int or bool).</summary>
    public T item<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return (T)(object)ToSingle();
        if (typeof(T) == typeof(double)) return (T)(object)ToDouble();
        if (typeof(T) == typeof(long)) return (T)(object)ToInt64();
        if (typeof(T) == typeof(int)) return (T)(object)checked((int)ToInt64());
        if (typeof(T) == typeof(bool)) return (T)(object)(ToInt64() != 0);
        throw new NotSupportedException($"item<{typeof(T).Name}> is not supported; use float, double, long, int or bool");
    }

    /// <summary>
    /// Copies all elements (row-major, moved to the host first if needed) into <paramref name="destination"/>,
    /// whose element type must match <see cref="dtype"/>.
    /// </summary>
    public unsafe void CopyTo<T>(Span<T> destination) where T : unmanaged
    {
        var expected = ScalarTypeExtensions.Of<T>();
        var h = Handle;
        var actual = (ScalarType)Native.orl_dtype(h);
        if (actual != expected)
            throw new TorchException($"cannot read a {actual.Name()} tensor as {typeof(T).Name} ({expected.Name()}); convert it with .to(ScalarType.{expected}) first");
        fixed (T* p = destination)
            Native.Check(Native.orl_copy_to_buffer(h, p, (long)destination.Length * sizeof(T)));
    }

    /// <summary>Size of the elements in bytes (numel times element size).</summary>
    public long nbytes()
    {
        var h = Handle;
        return Native.orl_numel(h) * Native.orl_element_size(h);
    }

    /// <summary>
    /// Copies the raw bytes of all elements (row-major, little-endian, moved to the host first if
    /// needed) into <paramref name="destination"/>, which must be exactly <see cref="nbytes"/> long.
    /// </summary>
    public unsafe void CopyBytesTo(Span<byte> destination)
    {
        fixed (byte* p = destination)
            Native.Check(Native.orl_copy_to_buffer(Handle, p, destination.Length));
    }

    /// <summary>All elements as a new array (row-major).</summary>
    public T[] data<T>() where T : unmanaged
    {
        var values = new T[numel()];
        CopyTo<T>(values);
        return values;
    }

    /// <summary>
    /// The elements of a contiguous CPU tensor as a span over libtorch's own memory (no copy). The span
    /// is valid only while this tensor is alive and is not resized.
    /// </summary>
    public unsafe Span<T> AsSpan<T>() where T : unmanaged
    {
        var h = Handle;
        if ((ScalarType)Native.orl_dtype(h) != ScalarTypeExtensions.Of<T>())
            throw new TorchException($"cannot view a {dtype.Name()} tensor as {typeof(T).Name}");
        if (Native.orl_device_type(h) != (int)DeviceType.CPU || Native.orl_is_contiguous(h) == 0)
            throw new TorchException("AsSpan needs a contiguous CPU tensor; call .cpu().contiguous() first");
        return new Span<T>((void*)Native.orl_data_ptr(h), checked((int)Native.orl_numel(h)));
    }

    // ---- conversion ---------------------------------------------------------------------------

    /// <summary>This tensor converted to another element type (a new tensor, even if the type is the same).</summary>
    public Tensor to(ScalarType type) => to(device, type);

    /// <summary>This tensor moved to another device.</summary>
    public Tensor to(Device target) => to(target, dtype);

    /// <summary>This tensor moved and converted; always a new tensor object.</summary>
    public Tensor to(Device target, ScalarType type, bool copy = false) =>
        Wrap(Native.orl_to(Handle, (int)type, (int)target.Type, target.Index, copy ? 1 : 0));

    /// <summary>A copy on the host.</summary>
    public Tensor cpu() => to(Device.CPU);

    /// <summary>A copy on GPU <paramref name="index"/>.</summary>
    public Tensor cuda(int index = -1) => to(Device.CUDA(index));

    /// <summary>A row-major version (the same storage when already contiguous).</summary>
    public Tensor contiguous() => Wrap(Native.orl_contiguous(Handle));

    /// <summary>A copy with its own storage that stays in the autograd graph.</summary>
    public Tensor clone() => Wrap(Native.orl_clone(Handle));

    /// <summary>A new tensor sharing storage but outside the autograd graph.</summary>
    public Tensor detach() => Wrap(Native.orl_detach(Handle));

    /// <summary>Another handle to the same tensor (same storage, same autograd identity).</summary>
    public Tensor alias() => Wrap(Native.orl_alias(Handle));

    // ---- autograd -----------------------------------------------------------------------------

    /// <summary>Whether autograd records operations on this tensor. Only leaves can be changed.</summary>
    public bool requires_grad
    {
        get => Native.orl_requires_grad(Handle) != 0;
        set => Native.Check(Native.orl_set_requires_grad(Handle, value ? 1 : 0));
    }

    /// <summary>Sets <see cref="requires_grad"/> and returns this tensor.</summary>
    public Tensor requires_grad_(bool value = true)
    {
        requires_grad = value;
        return this;
    }

    /// <summary>True for tensors created by the user rather than by a recorded operation.</summary>
    public bool is_leaf => Native.orl_is_leaf(Handle) != 0;

    /// <summary>
    /// Back-propagates from this tensor. <paramref name="gradient"/> is required for non-scalars;
    /// gradients accumulate into the leaves' <see cref="grad"/>.
    /// </summary>
    public void backward(Tensor? gradient = null, bool retain_graph = false, bool create_graph = false)
    {
        var h = Handle;
        if (gradient is null)
        {
            Native.Check(Native.orl_backward(h, IntPtr.Zero, retain_graph ? 1 : 0, create_graph ? 1 : 0));
            return;
        }
        var g = gradient.Handle;
        var added = false;
        g.DangerousAddRef(ref added);
        try
        {
            Native.Check(Native.orl_backward(h, g.DangerousGetHandle(), retain_graph ? 1 : 0, create_graph ? 1 : 0));
        }
        finally
        {
            g.DangerousRelease();
        }
    }

    /// <summary>
    /// The accumulated gradient (a new handle to it, owned by the caller or the open scope), or null
    /// when none has been computed. Setting null clears it.
    /// </summary>
    public Tensor? grad
    {
        get
        {
            Native.Check(Native.orl_grad(Handle, out var raw));
            return raw == IntPtr.Zero ? null : new Tensor(raw);
        }
        set
        {
            if (value is null)
            {
                Native.Check(Native.orl_set_grad(Handle, IntPtr.Zero));
                return;
            }
            var g = value.Handle;
            var added = false;
            g.DangerousAddRef(ref added);
            try
            {
                Native.Check(Native.orl_set_grad(Handle, g.DangerousGetHandle()));
            }
            finally
            {
                g.DangerousRelease();
            }
        }
    }

    // ---- text ---------------------------------------------------------------------------------

    /// <summary>Shape, type and device, plus the values when there are at most 64 of them.</summary>
    public override string ToString()
    {
        if (IsDisposed) return "tensor(disposed)";
        var header = $"tensor(shape=[{string.Join(", ", shape)}], dtype={dtype.Name()}, device={device}";
        if (requires_grad) header += ", requires_grad=true";
        if (numel() > 64) return header + ")";
        using var values = to(Device.CPU, dtype == ScalarType.Bool ? ScalarType.Bool : ScalarType.Float64);
        var text = new StringBuilder();
        if (values.dtype == ScalarType.Bool) AppendNested(text, values.data<bool>(), shape, 0, 0, v => v ? "true" : "false");
        else if (dtype.IsFloatingPoint()) AppendNested(text, values.data<double>(), shape, 0, 0, v => v.ToString("0.0000", CultureInfo.InvariantCulture));
        else AppendNested(text, values.data<double>(), shape, 0, 0, v => ((long)v).ToString(CultureInfo.InvariantCulture));
        return header + ", values=" + text + ")";
    }

    private static int AppendNested<T>(StringBuilder text, T[] values, long[] sizes, int dimension, int offset, Func<T, string> format)
    {
        if (dimension == sizes.Length)
        {
            text.Append(format(values[offset]));
            return offset + 1;
        }
        text.Append('[');
        for (var i = 0; i < sizes[dimension]; i++)
        {
            if (i > 0) text.Append(", ");
            offset = AppendNested(text, values, sizes, dimension + 1, offset, format);
        }
        text.Append(']');
        return offset;
    }
}
