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
/// bad input: truncated or corrupt bytes, an unsupported schema version, a missing or out-of-range field
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
        catch (InvalidProtocolBufferException ex)
        {
            return DecodeResult<T>.Failure(DecodeErrorKind.Malformed, $"payload: not a valid {ParserOf<T>.TypeName} ({ex.Message})");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The protobuf runtime documents InvalidProtocolBufferException only; anything else is still bad input.
            return DecodeResult<T>.Failure(DecodeErrorKind.Malformed,
                $"payload: not a valid {ParserOf<T>.TypeName} ({ex.GetType().Name}: {ex.Message})");
        }
        return ContractValidator.Validate(message) is { } problem
            ? DecodeResult<T>.Failure(problem.Kind, problem.Reason)
            : DecodeResult<T>.Success(message);
    }

    private static class ParserOf<T> where T : class, IMessage<T>, new()
    {
        public static readonly MessageParser<T> Parser = new(() => new T());
        public static readonly string TypeName = new T().Descriptor.FullName;
    }
}
