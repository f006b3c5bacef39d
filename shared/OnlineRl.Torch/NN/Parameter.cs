namespace OnlineRl.Torch.NN;

/// <summary>
/// A trainable tensor owned by a <see cref="Module"/>: a leaf with requires_grad set, never owned by a
/// dispose scope (it lives as long as its module).
/// </summary>
public sealed class Parameter : Tensor
{
    /// <summary>Makes a parameter that shares <paramref name="data"/>'s storage, detached from any graph.</summary>
    public Parameter(Tensor data, bool requires_grad = true) : base(Detached(data))
    {
        DetachFromDisposeScope();
        this.requires_grad = requires_grad;
    }

    private static IntPtr Detached(Tensor data)
    {
        var raw = Native.orl_detach(data.Handle);
        return raw == IntPtr.Zero ? throw new TorchException(Native.LastError()) : raw;
    }
}
