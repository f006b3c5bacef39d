using System.Buffers.Binary;
using System.Numerics;
using Google.Protobuf;

namespace OnlineRl.Pipeline;

/// <summary>
/// Writes a TensorBoard event file of scalars: a TFRecord file (each record: the data's length as uint64, the masked
/// CRC-32C of those 8 bytes, the data, the masked CRC-32C of the data; all little-endian) of serialized
/// <c>tensorboard.Event</c> messages. The first event holds the file version, every other one a scalar.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 has <c>torch.utils.tensorboard.SummaryWriter</c>; it is not used because its file-version event
/// carries <c>DateTime.Now.Ticks</c> (about 6.4e17) as its wall time where TensorBoard reads Unix seconds (a run
/// "started" in the year 2e10), its wall times are whole seconds, its steps are 32-bit, and it reopens the file for
/// every scalar. This writer keeps the file open and flushes when asked (after each learner step).
/// </remarks>
public sealed class TensorBoardWriter : IDisposable
{
    private const string FileVersion = "brain.Event:2";
    private static int filesOpened;
    private readonly FileStream file;

    /// <summary>Creates a new event file in <paramref name="directory"/> (created when missing).</summary>
    public TensorBoardWriter(string directory)
    {
        Directory.CreateDirectory(directory);
        // TensorBoard reads every file whose name contains "tfevents"; this is the name TensorFlow and PyTorch give them.
        FilePath = Path.Combine(directory, FormattableString.Invariant(
            $"events.out.tfevents.{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{Environment.MachineName}.{Environment.ProcessId}.{Interlocked.Increment(ref filesOpened)}"));
        file = new FileStream(FilePath, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        WriteEvent(0, output =>
        {
            output.WriteTag(3, WireFormat.WireType.LengthDelimited); // Event.file_version
            output.WriteString(FileVersion);
        });
        Flush();
    }

    /// <summary>The event file.</summary>
    public string FilePath { get; }

    /// <summary>Adds one scalar (TensorBoard stores it as float32) at <paramref name="step"/>, stamped with the current time.</summary>
    public void AddScalar(string tag, float value, long step)
    {
        // Summary.Value { tag = 1; simple_value = 2 } inside Summary { repeated Value value = 1 }.
        var summaryValue = Serialize(output =>
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteString(tag);
            output.WriteTag(2, WireFormat.WireType.Fixed32);
            output.WriteFloat(value);
        });
        var summary = Serialize(output =>
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(summaryValue));
        });
        WriteEvent(step, output =>
        {
            output.WriteTag(5, WireFormat.WireType.LengthDelimited); // Event.summary
            output.WriteBytes(ByteString.CopyFrom(summary));
        });
    }

    /// <summary>Hands what was added to the operating system, so a running TensorBoard sees it.</summary>
    public void Flush() => file.Flush();

    /// <inheritdoc />
    public void Dispose() => file.Dispose();

    // Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; ... } }
    private void WriteEvent(long step, Action<CodedOutputStream> what)
    {
        var wallTime = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalSeconds;
        WriteRecord(Serialize(output =>
        {
            output.WriteTag(1, WireFormat.WireType.Fixed64);
            output.WriteDouble(wallTime);
            output.WriteTag(2, WireFormat.WireType.Varint);
            output.WriteInt64(step);
            what(output);
        }));
    }

    private static byte[] Serialize(Action<CodedOutputStream> write)
    {
        using var memory = new MemoryStream();
        using (var output = new CodedOutputStream(memory, leaveOpen: true))
            write(output);
        return memory.ToArray();
    }

    private void WriteRecord(byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc32C(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc32C(data));
        file.Write(header);
        file.Write(data);
        file.Write(footer);
    }

    // TFRecord's checksum: CRC-32C, rotated right by 15 bits plus a constant (so a CRC of data holding CRCs stays strong).
    private static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        var crc = ~0u;
        for (; data.Length >= 8; data = data[8..]) crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        crc = ~crc;
        return BitOperations.RotateRight(crc, 15) + 0xa282ead8u;
    }
}
