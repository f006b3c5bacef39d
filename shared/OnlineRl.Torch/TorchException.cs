namespace OnlineRl.Torch;

/// <summary>An error raised by libtorch (the C++ message is kept verbatim) or by the binding's checks.</summary>
public sealed class TorchException : Exception
{
    /// <summary>Creates the exception with libtorch's message.</summary>
    public TorchException(string message) : base(message) { }
}
