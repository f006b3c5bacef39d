using System.Runtime.InteropServices;

namespace OnlineRl.Torch;

/// <summary>
/// Owns one native at::Tensor. Releasing it drops that reference; the storage is freed by libtorch
/// when no other tensor, view or autograd node still uses it.
/// </summary>
internal sealed class TensorHandle : SafeHandle
{
    private static long live;

    internal TensorHandle(IntPtr raw) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle(raw);
        Interlocked.Increment(ref live);
    }

    private static long finalized;

    /// <summary>Handles created and not yet released, process-wide.</summary>
    internal static long LiveCount => Interlocked.Read(ref live);

    /// <summary>Handles released by the garbage collector's finalizer rather than by Dispose (leaks, process-wide).</summary>
    internal static long FinalizedCount => Interlocked.Read(ref finalized);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (!disposing && !IsClosed) Interlocked.Increment(ref finalized);
        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <inheritdoc />
    protected override bool ReleaseHandle()
    {
        Native.orl_free(handle);
        Interlocked.Decrement(ref live);
        return true;
    }
}

/// <summary>
/// Raw pointers of several tensors for one native call, each handle kept alive (AddRef) until disposed.
/// </summary>
internal readonly struct HandleArray : IDisposable
{
    private readonly TensorHandle[] handles;

    internal HandleArray(IReadOnlyList<Tensor> tensors)
    {
        handles = new TensorHandle[tensors.Count];
        Pointers = new IntPtr[tensors.Count];
        for (var i = 0; i < tensors.Count; i++)
        {
            var handle = tensors[i].Handle;
            var added = false;
            handle.DangerousAddRef(ref added);
            handles[i] = handle;
            Pointers[i] = handle.DangerousGetHandle();
        }
    }

    internal IntPtr[] Pointers { get; }

    public void Dispose()
    {
        foreach (var handle in handles) handle?.DangerousRelease();
    }
}
