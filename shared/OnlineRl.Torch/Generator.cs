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

    /// <summary>The generator's full state as a uint8 tensor (torch.Generator.get_state); the caller owns it.</summary>
    public Tensor get_state() => Tensor.Wrap(Native.orl_generator_get_state(Handle));

    /// <summary>Restores a state read by <see cref="get_state"/>: the following draws repeat those that followed it.</summary>
    public void set_state(Tensor state) => Native.Check(Native.orl_generator_set_state(Handle, state.Handle));

    /// <summary>Frees the native generator.</summary>
    public void Dispose() => Handle.Dispose();
}
