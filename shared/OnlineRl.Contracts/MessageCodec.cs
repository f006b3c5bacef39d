using Google.Protobuf;

namespace OnlineRl.Contracts;

/// <summary>Limits of a <see cref="MessageCodec"/>.</summary>
public sealed record MessageCodecOptions
{
    /// <summary>The default payload limit: 64 MiB.</summary>
    public const int DefaultMaxPayloadBytes = 64 * 1024 * 1024;

    /// <summary>Largest payload accepted by <see cref="MessageCodec.Encode"/> and <see cref="MessageCodec.Decode{T}"/>.</summary>
    public int MaxPayloadBytes { get; init; } = DefaultMaxPayloadBytes;
}

/// <summary>
/// Writes messages to bytes and reads them back with validation. <see cref="Decode{T}"/> never throws on
/// bad input: corrupt bytes, bytes cut off inside a field, an unsupported schema version, a missing or out-of-range field
/// and an oversized payload each give a <see cref="DecodeResult{T}"/> whose error names the field.
/// Thread-safe.
/// </summary>
public sealed class MessageCodec
{
    /// <summary>A codec with the default limits.</summary>
    public static MessageCodec Default { get; } = new();

    /// <summary>Creates a codec.</summary>
    /// <param name="options">Limits (default: <see cref="MessageCodecOptions"/> defaults).</param>
    public MessageCodec(MessageCodecOptions? options = null)
    {
        Options = options ?? new MessageCodecOptions();
        if (Options.MaxPayloadBytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), Options.MaxPayloadBytes, "MaxPayloadBytes must be positive.");
    }

    /// <summary>The limits of this codec.</summary>
    public MessageCodecOptions Options { get; }

    /// <summary>The type name written in the "message-type" header, e.g. "onlinerl.v1.RolloutGroup".</summary>
    /// <param name="message">A message.</param>
    public static string MessageTypeOf(IMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return message.Descriptor.FullName;
    }

    /// <summary>The first rule <paramref name="message"/> breaks, as "field: problem", or null when it is valid.</summary>
    /// <param name="message">The message to check.</param>
    public static string? Validate(IContractMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return ContractValidator.Validate(message)?.Reason;
    }

    /// <summary>Validates and serializes a message.</summary>
    /// <param name="message">The message (its envelope must be filled, see <see cref="ContractMessageExtensions.Stamp"/>).</param>
    /// <returns>The protobuf bytes.</returns>
    /// <exception cref="ArgumentException">The message breaks a rule or is larger than the limit; the message names the field.</exception>
    public byte[] Encode(IContractMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (ContractValidator.Validate(message) is { } problem)
            throw new ArgumentException($"Invalid {MessageTypeOf(message)}: {problem.Reason}", nameof(message));
        var size = message.CalculateSize();
        if (size > Options.MaxPayloadBytes)
            throw new ArgumentException(
                $"Invalid {MessageTypeOf(message)}: payload: {size} bytes exceeds the limit of {Options.MaxPayloadBytes} bytes", nameof(message));
        return message.ToByteArray();
    }

    /// <summary>Parses and validates a payload. Never throws on bad input.</summary>
    /// <typeparam name="T">The expected message type.</typeparam>
    /// <param name="payload">The bytes.</param>
    public DecodeResult<T> Decode<T>(ReadOnlySpan<byte> payload) where T : class, IMessage<T>, IContractMessage, new()
    {
        if (payload.Length > Options.MaxPayloadBytes)
            return DecodeResult<T>.Failure(DecodeErrorKind.Oversized,
                $"payload: {payload.Length} bytes exceeds the limit of {Options.MaxPayloadBytes} bytes");
        T message;
        try
        {
            message = ParserOf<T>.Parser.ParseFrom(payload);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The protobuf runtime documents InvalidProtocolBufferException only; anything else is still bad input.
            var detail = ex is InvalidProtocolBufferException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
            return CutOffField(payload, Options.MaxPayloadBytes) is { } cut
                ? DecodeResult<T>.Failure(DecodeErrorKind.Truncated, $"payload: truncated {ParserOf<T>.TypeName}: {cut}")
                : DecodeResult<T>.Failure(DecodeErrorKind.Malformed, $"payload: not a valid {ParserOf<T>.TypeName} ({detail})");
        }
        return ContractValidator.Validate(message) is { } problem
            ? DecodeResult<T>.Failure(problem.Kind, problem.Reason)
            : DecodeResult<T>.Success(message);
    }

    /// <summary>
    /// Walks the top-level fields of a payload protobuf could not parse and describes the field the bytes end
    /// in, or returns null when every top-level field is complete or a field claims more bytes than any message
    /// within <paramref name="maxPayloadBytes"/> has (the bytes are corrupt, not cut short). A cut anywhere inside
    /// a message always cuts its last top-level field, so this one level is enough.
    /// </summary>
    private static string? CutOffField(ReadOnlySpan<byte> payload, int maxPayloadBytes)
    {
        var position = 0;
        while (position < payload.Length)
        {
            var start = position;
            switch (ReadVarint(payload, ref position, out var tag))
            {
                case VarintRead.Ended: return $"the bytes end inside the tag at offset {start}";
                case VarintRead.TooLong: return null;
            }
            var field = tag >> 3;
            ulong length;
            switch (tag & 7)
            {
                case 0: // varint
                    switch (ReadVarint(payload, ref position, out _))
                    {
                        case VarintRead.Ended: return $"field {field}: the bytes end inside its varint value";
                        case VarintRead.TooLong: return null;
                    }
                    continue;
                case 1: // fixed 64-bit
                    length = 8;
                    break;
                case 2: // length-delimited
                    switch (ReadVarint(payload, ref position, out length))
                    {
                        case VarintRead.Ended: return $"field {field}: the bytes end inside its length";
                        case VarintRead.TooLong: return null;
                    }
                    break;
                case 5: // fixed 32-bit
                    length = 4;
                    break;
                default: // groups (unused by the contracts) and the invalid wire types 6 and 7
                    return null;
            }
            var remaining = (ulong)(payload.Length - position);
            if (length > (ulong)(maxPayloadBytes - position)) return null;
            if (length > remaining) return $"field {field}: needs {length} bytes, only {remaining} remain";
            position += (int)length;
        }
        return null;
    }

    private enum VarintRead { Complete, Ended, TooLong }

    private static VarintRead ReadVarint(ReadOnlySpan<byte> payload, ref int position, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (position >= payload.Length) return VarintRead.Ended;
            var b = payload[position++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return VarintRead.Complete;
        }
        return VarintRead.TooLong;
    }

    private static class ParserOf<T> where T : class, IMessage<T>, new()
    {
        public static readonly MessageParser<T> Parser = new(() => new T());
        public static readonly string TypeName = new T().Descriptor.FullName;
    }
}
