using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineRl.Model;

/// <summary>Where one tensor sits in a safetensors file.</summary>
/// <param name="Name">Tensor name, e.g. "model.layers.0.mlp.up_proj.weight".</param>
/// <param name="Type">Element type on disk.</param>
/// <param name="Shape">Sizes of each dimension.</param>
/// <param name="Begin">First byte, relative to the start of the data section.</param>
/// <param name="End">One past the last byte, relative to the start of the data section.</param>
public sealed record SafeTensorInfo(string Name, ScalarType Type, long[] Shape, long Begin, long End);

/// <summary>
/// A safetensors file opened for reading, memory-mapped so that loading a tensor copies its bytes once
/// (into libtorch) and a large checkpoint never sits in memory twice. Format (huggingface/safetensors):
/// an unsigned little-endian 64-bit header length N, N bytes of JSON
/// <c>{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}</c>, then the data.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L << 20;

    private readonly MemoryMappedFile? map;
    private readonly MemoryMappedViewAccessor? view;
    private readonly long dataStart;

    private SafeTensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, long dataStart,
        Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        this.map = map;
        this.view = view;
        this.dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>Every tensor in the file by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }

    /// <summary>The free-form "__metadata__" entries.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>; errors name the file and what is wrong.</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        var length = new FileInfo(path).Length;
        if (length < 8) throw new InvalidDataException($"{path}: too short to be a safetensors file ({length} bytes)");
        using var stream = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var headerLength = BitConverter.ToInt64(prefix);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > length)
            throw new InvalidDataException($"{path}: header length {headerLength} is impossible for a {length}-byte file (truncated or not safetensors)");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var (tensors, metadata) = ParseHeader(path, header);
        var dataLength = length - 8 - headerLength;
        foreach (var info in tensors.Values)
        {
            if (info.End > dataLength)
                throw new InvalidDataException($"{path}: truncated: tensor '{info.Name}' needs data bytes up to {info.End}, the file has {dataLength}");
        }
        if (dataLength == 0) return new SafeTensorsFile(path, null, null, 8 + headerLength, tensors, metadata);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        return new SafeTensorsFile(path, map, view, 8 + headerLength, tensors, metadata);
    }

    private static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(header)?.AsObject() ?? throw new InvalidDataException("empty header");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: the header is not a JSON object ({e.Message})", e);
        }
        var tensors = new Dictionary<string, SafeTensorInfo>();
        var metadata = new Dictionary<string, string>();
        var spans = new List<(long Begin, long End, string Name)>();
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                foreach (var (key, value) in node?.AsObject() ?? new JsonObject())
                    metadata[key] = value?.GetValue<string>() ?? "";
                continue;
            }
            try
            {
                var entry = node?.AsObject() ?? throw new InvalidDataException("entry is null");
                var dtypeName = entry["dtype"]?.GetValue<string>() ?? throw new InvalidDataException("no 'dtype'");
                var type = ParseDtype(dtypeName);
                var shape = (entry["shape"]?.AsArray() ?? throw new InvalidDataException("no 'shape'"))
                    .Select(d => d!.GetValue<long>()).ToArray();
                var offsets = entry["data_offsets"]?.AsArray() ?? throw new InvalidDataException("no 'data_offsets'");
                if (offsets.Count != 2) throw new InvalidDataException("'data_offsets' must have two entries");
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                if (shape.Any(d => d < 0)) throw new InvalidDataException($"negative size in shape [{string.Join(", ", shape)}]");
                var expected = shape.Aggregate(1L, (a, b) => a * b) * type.ElementSize();
                if (begin < 0 || end < begin || end - begin != expected)
                    throw new InvalidDataException($"data_offsets [{begin}, {end}] hold {end - begin} bytes but {ModelConfig.DtypeName(type)} [{string.Join(", ", shape)}] needs {expected}");
                tensors[name] = new SafeTensorInfo(name, type, shape, begin, end);
                spans.Add((begin, end, name));
            }
            catch (Exception e) when (e is InvalidDataException or InvalidOperationException or FormatException or JsonException)
            {
                throw new InvalidDataException($"{path}: tensor '{name}': {e.Message}", e);
            }
        }
        spans.Sort();
        for (var i = 1; i < spans.Count; i++)
        {
            if (spans[i].Begin < spans[i - 1].End)
                throw new InvalidDataException($"{path}: tensors '{spans[i - 1].Name}' and '{spans[i].Name}' overlap");
        }
        return (tensors, metadata);
    }

    /// <summary>The safetensors dtype name for an element type.</summary>
    public static string DtypeName(ScalarType type) => type switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"{type} cannot be stored in safetensors"),
    };

    private static ScalarType ParseDtype(string name) => name switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new InvalidDataException($"unsupported dtype '{name}'"),
    };

    /// <summary>
    /// Loads tensor <paramref name="name"/>, converted to <paramref name="dtype"/> (when given) and placed on
    /// <paramref name="device"/>. Exactly one copy from the mapped file; conversion happens in libtorch.
    /// </summary>
    public unsafe Tensor Load(string name, ScalarType? dtype = null, Device? device = null)
    {
        if (!Tensors.TryGetValue(name, out var info))
            throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");
        var length = info.End - info.Begin;
        Tensor raw;
        if (length == 0)
        {
            raw = torch.empty(info.Shape, info.Type, device);
        }
        else
        {
            if (length > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{name}' is larger than 2 GiB");
            byte* basePointer = null;
            var handle = view!.SafeMemoryMappedViewHandle;
            handle.AcquirePointer(ref basePointer);
            try
            {
                // The one copy: mapped file -> the tensor's CPU storage (TorchSharp's bytes setter), then to the device.
                var bytes = new Span<byte>(basePointer + view.PointerOffset + dataStart + info.Begin, (int)length);
                raw = torch.empty(info.Shape, info.Type);
                raw.bytes = bytes;
            }
            finally
            {
                handle.ReleasePointer();
            }
            if (device is not null && device.type != DeviceType.CPU)
            {
                using var onCpu = raw;
                raw = onCpu.to(device);
            }
        }
        if (dtype is null || dtype == info.Type) return raw;
        using (raw) return raw.to(dtype.Value);
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        view?.Dispose();
        map?.Dispose();
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> in the safetensors format, atomically
    /// (a temporary file renamed into place). Tensors are streamed one at a time.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var (name, tensor) in list)
        {
            var size = tensor.NumberOfElements * tensor.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = DtypeName(tensor.dtype),
                ["shape"] = new JsonArray(tensor.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + size),
            };
            offset += size;
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        var padded = (headerBytes.Length + 7) / 8 * 8;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            stream.Write(BitConverter.GetBytes((long)padded));
            stream.Write(headerBytes);
            for (var i = headerBytes.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var (_, tensor) in list)
            {
                using var contiguous = tensor.device_type == DeviceType.CPU ? tensor.contiguous() : tensor.cpu().contiguous();
                stream.Write(contiguous.bytes);
            }
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
