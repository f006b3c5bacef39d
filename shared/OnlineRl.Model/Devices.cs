namespace OnlineRl.Model;

/// <summary>Device names as configs and command lines write them.</summary>
public static class Devices
{
    /// <summary>
    /// "cpu", "cuda" or "cuda:N" as a TorchSharp device. Asking for CUDA where libtorch sees none is an
    /// error that says why, instead of libtorch's failure at the first tensor.
    /// </summary>
    /// <exception cref="FormatException">Not one of the forms above.</exception>
    /// <exception cref="InvalidOperationException">CUDA was asked for and is not available.</exception>
    public static Device Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':');
        if (parts.Length > 2 || parts[0] is not ("cpu" or "cuda"))
            throw new FormatException($"unknown device '{text}': expected cpu, cuda or cuda:N");
        var index = -1;
        if (parts.Length == 2 && (!int.TryParse(parts[1], out index) || index < 0))
            throw new FormatException($"bad device '{text}': expected cpu, cuda or cuda:N");
        if (parts[0] == "cpu") return CPU;
        if (!torch.cuda.is_available())
            throw new InvalidOperationException($"device '{text}' asked for, but libtorch sees no CUDA device: this build uses the " +
                "CPU backend (build with -p:TorchBackend=cuda on a machine with an NVIDIA driver) or the GPU is not visible");
        if (index >= torch.cuda.device_count())
            throw new InvalidOperationException($"device '{text}' asked for, but only {torch.cuda.device_count()} CUDA device(s) are visible");
        return index < 0 ? CUDA : torch.device(DeviceType.CUDA, index);
    }
}
