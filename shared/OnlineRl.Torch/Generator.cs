using System.Runtime.InteropServices;

namespace OnlineRl.Torch;

/// <summary>Owns one native at::Generator.</summary>
internal sealed class GeneratorHandle : SafeHandle
{
    internal GeneratorHandle(IntPtr raw) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(raw);

    /// <inheritdoc />
    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <inheritdoc />
    protected override bool ReleaseHandle()
    {
        Native.orl_generator_free(handle);
        return true;
    }
}

/// <summary>
/// A private random stream (torch.Generator): sampling with it neither reads nor advances the global
/// generator, so concurrent samplers stay reproducible for their seeds.
/// </summary>
public sealed class Generator : IDisposable
{
    /// <summary>A generator for <paramref name="device"/> (default CPU) starting from <paramref name="seed"/>.</summary>
    public Generator(long seed, Device? device = null)
    {
        var place = device ?? Device.CPU;
        var raw = Native.orl_generator_new(unchecked((ulong)seed), (int)place.Type, place.Index);
        if (raw == IntPtr.Zero) throw new TorchException(Native.LastError());
        Handle = new GeneratorHandle(raw);
    }

    internal GeneratorHandle Handle { get; }

    /// <summary>Frees the native generator.</summary>
    public void Dispose() => Handle.Dispose();
}
