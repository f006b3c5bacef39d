namespace OnlineRl.Torch;

/// <summary>Kinds of device; the numbers are libtorch's c10::DeviceType codes.</summary>
public enum DeviceType
{
    /// <summary>Host memory.</summary>
    CPU = 0,
    /// <summary>An NVIDIA GPU.</summary>
    CUDA = 1,
}

/// <summary>Where a tensor lives: "cpu", "cuda" (the current GPU) or "cuda:N".</summary>
public readonly record struct Device(DeviceType Type, int Index = -1)
{
    /// <summary>The host.</summary>
    public static readonly Device CPU = new(DeviceType.CPU);

    /// <summary>GPU number <paramref name="index"/> (-1: the current one).</summary>
    public static Device CUDA(int index = -1) => new(DeviceType.CUDA, index);

    /// <summary>Parses "cpu", "cuda" or "cuda:N".</summary>
    public static Device Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':');
        var type = parts[0] switch
        {
            "cpu" => DeviceType.CPU,
            "cuda" => DeviceType.CUDA,
            _ => throw new FormatException($"unknown device '{text}': expected cpu, cuda or cuda:N"),
        };
        if (parts.Length == 1) return new Device(type);
        if (parts.Length == 2 && int.TryParse(parts[1], out var index) && index >= 0) return new Device(type, index);
        throw new FormatException($"bad device '{text}': expected cpu, cuda or cuda:N");
    }

    /// <inheritdoc />
    public override string ToString() =>
        (Type == DeviceType.CPU ? "cpu" : "cuda") + (Index >= 0 ? $":{Index}" : "");
}
