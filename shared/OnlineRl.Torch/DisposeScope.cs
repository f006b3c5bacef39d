namespace OnlineRl.Torch;

/// <summary>
/// Collects every tensor created on this thread while it is the innermost open scope and disposes
/// them all when it is disposed, so a training step frees its temporaries deterministically instead
/// of waiting for finalizers. Keep a result alive with <see cref="MoveToOuter(Tensor)"/> or
/// <see cref="Tensor.DetachFromDisposeScope"/>. Open one with <c>torch.NewDisposeScope()</c>.
/// </summary>
public sealed class DisposeScope : IDisposable
{
    [ThreadStatic] private static DisposeScope? innermost;

    private readonly DisposeScope? outer;
    private readonly List<Tensor> owned = new();
    private bool disposed;

    internal DisposeScope()
    {
        outer = innermost;
        innermost = this;
    }

    /// <summary>The scope new tensors on this thread join, if any.</summary>
    internal static DisposeScope? Current => innermost;

    /// <summary>Tensors this scope will dispose.</summary>
    public int Count => owned.Count(t => t.OwningScope == this && !t.IsDisposed);

    internal void Add(Tensor tensor)
    {
        tensor.OwningScope = this;
        owned.Add(tensor);
    }

    /// <summary>Hands <paramref name="tensor"/> to the enclosing scope (or to no scope) and returns it.</summary>
    public Tensor MoveToOuter(Tensor tensor)
    {
        if (tensor.OwningScope != this) return tensor;
        tensor.OwningScope = null;
        outer?.Add(tensor);
        return tensor;
    }

    /// <summary>Hands several tensors to the enclosing scope.</summary>
    public void MoveToOuter(params Tensor[] tensors)
    {
        foreach (var tensor in tensors) MoveToOuter(tensor);
    }

    /// <summary>Disposes every tensor still owned by this scope and closes it.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var tensor in owned)
        {
            if (tensor.OwningScope == this) tensor.Dispose();
        }
        owned.Clear();
        // Scopes close in LIFO order on one thread; an out-of-order close restores the outer chain anyway.
        if (innermost == this) innermost = outer;
    }
}
