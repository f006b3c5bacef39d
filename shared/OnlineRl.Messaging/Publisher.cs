using System.Globalization;
using OnlineRl.Contracts;

namespace OnlineRl.Messaging;

/// <summary>
/// Publishes contract messages: validates and encodes with <see cref="MessageCodec"/> and adds the
/// <see cref="MessageHeaders"/> (schema-version, message-type, run-id, message-id). Thread-safe.
/// </summary>
public sealed class Publisher
{
    private readonly IEventBus _bus;
    private readonly MessageCodec _codec;
    private readonly MessagingMetrics _metrics;

    /// <summary>Creates a publisher.</summary>
    /// <param name="bus">The bus to publish on.</param>
    /// <param name="codec">The codec (default: <see cref="MessageCodec.Default"/>).</param>
    /// <param name="metrics">The counters (default: <see cref="MessagingMetrics.Shared"/>).</param>
    public Publisher(IEventBus bus, MessageCodec? codec = null, MessagingMetrics? metrics = null)
    {
        _bus = bus ?? throw new ArgumentNullException(nameof(bus));
        _codec = codec ?? MessageCodec.Default;
        _metrics = metrics ?? MessagingMetrics.Shared;
    }

    /// <summary>Encodes and publishes a message (waits while the topic is full).</summary>
    /// <typeparam name="T">The message type.</typeparam>
    /// <param name="topic">The topic; a topic of <see cref="Topics"/> accepts only its own message type.</param>
    /// <param name="message">The message, envelope filled (see <see cref="ContractMessageExtensions.Stamp"/>).</param>
    /// <param name="key">The key (default: the message id).</param>
    /// <param name="extraHeaders">More headers, or null; they cannot replace the standard ones.</param>
    /// <param name="cancellationToken">Cancels the wait for space.</param>
    /// <returns>The transport's id of the message.</returns>
    /// <exception cref="ArgumentException">The message is invalid or does not belong on the topic.</exception>
    public async ValueTask<string> PublishAsync<T>(string topic, T message, string? key = null,
        IReadOnlyDictionary<string, string>? extraHeaders = null, CancellationToken cancellationToken = default)
        where T : IContractMessage
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(message);
        var type = MessageCodec.MessageTypeOf(message);
        if (Topics.MessageTypeOf(topic) is { } expected && expected != type)
            throw new ArgumentException($"Topic '{topic}' carries {expected}, not {type}.", nameof(message));
        var payload = _codec.Encode(message);
        var headers = HeadersFor(message);
        if (extraHeaders is not null)
            foreach (var (name, value) in extraHeaders)
                headers.TryAdd(name, value);
        var id = await _bus.PublishAsync(topic, key ?? message.MessageId, payload, headers, cancellationToken).ConfigureAwait(false);
        _metrics.Published(topic, payload.Length);
        return id;
    }

    /// <summary>The standard headers of a message.</summary>
    /// <param name="message">The message.</param>
    public static Dictionary<string, string> HeadersFor(IContractMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [MessageHeaders.SchemaVersion] = message.SchemaVersion.ToString(CultureInfo.InvariantCulture),
            [MessageHeaders.MessageType] = MessageCodec.MessageTypeOf(message),
            [MessageHeaders.RunId] = message.RunId,
            [MessageHeaders.MessageId] = message.MessageId,
        };
    }
}
