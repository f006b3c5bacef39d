using System.Diagnostics.CodeAnalysis;

namespace OnlineRl.Contracts;

/// <summary>What kind of problem made a payload unreadable (low cardinality: fit for a metric label).</summary>
public enum DecodeErrorKind
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The payload is larger than the configured limit.</summary>
    Oversized,

    /// <summary>The bytes are not a protobuf message of the expected type (corrupt).</summary>
    Malformed,

    /// <summary>The bytes end in the middle of a field: the tail of the message was cut off.</summary>
    Truncated,

    /// <summary>The schema version is missing, too old or newer than this build understands.</summary>
    UnsupportedSchemaVersion,

    /// <summary>The message parsed but a field is missing or out of range.</summary>
    Invalid,
}

/// <summary>The outcome of <see cref="MessageCodec.Decode{T}(ReadOnlySpan{byte})"/>: a value or a reason.</summary>
/// <typeparam name="T">The message type.</typeparam>
public sealed class DecodeResult<T> where T : class
{
    private DecodeResult(T? value, string? error, DecodeErrorKind kind)
    {
        Value = value;
        Error = error;
        ErrorKind = kind;
    }

    /// <summary>True when the payload decoded and validated; then <see cref="Value"/> is set.</summary>
    [MemberNotNullWhen(true, nameof(Value))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Ok => Value is not null;

    /// <summary>The decoded message, or null on error.</summary>
    public T? Value { get; }

    /// <summary>Why the payload was rejected (names the field), or null on success.</summary>
    public string? Error { get; }

    /// <summary>The category of the error (<see cref="DecodeErrorKind.None"/> on success).</summary>
    public DecodeErrorKind ErrorKind { get; }

    /// <summary>A successful result.</summary>
    /// <param name="value">The decoded message.</param>
    public static DecodeResult<T> Success(T value) =>
        new(value ?? throw new ArgumentNullException(nameof(value)), null, DecodeErrorKind.None);

    /// <summary>A failed result.</summary>
    /// <param name="kind">The category (not <see cref="DecodeErrorKind.None"/>).</param>
    /// <param name="error">The reason, naming the field.</param>
    public static DecodeResult<T> Failure(DecodeErrorKind kind, string error)
    {
        if (kind == DecodeErrorKind.None) throw new ArgumentOutOfRangeException(nameof(kind), "A failure needs an error kind.");
        ArgumentException.ThrowIfNullOrEmpty(error);
        return new(null, error, kind);
    }

    /// <inheritdoc />
    public override string ToString() => Ok ? $"Ok({Value})" : $"Error({ErrorKind}: {Error})";
}
