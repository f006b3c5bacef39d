using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using OnlineRl.Contracts;

namespace OnlineRl.Messaging;

/// <summary>
/// The messaging counters (Meter <see cref="MeterName"/>). Instrument names follow OpenTelemetry
/// conventions and render in Prometheus as e.g. <c>onlinerl_messaging_published_total</c>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term>onlinerl.messaging.published</term><description>messages published ({message}); tag topic.</description></item>
/// <item><term>onlinerl.messaging.published.size</term><description>payload bytes published (By); tag topic.</description></item>
/// <item><term>onlinerl.messaging.consumed</term><description>messages handled and acknowledged ({message}); tags topic, group.</description></item>
/// <item><term>onlinerl.messaging.dead_letters</term><description>messages sent to the dead-letter topic ({message}); tags topic, reason
/// (a low-cardinality category of <see cref="DeadLetterReasons"/>).</description></item>
/// <item><term>onlinerl.messaging.handler_failures</term><description>handler exceptions ({failure}); tags topic, group.</description></item>
/// <item><term>onlinerl.messaging.consumer.lag</term><description>messages a group has not acknowledged yet ({message}); tags topic,
/// group; observed from the buses registered with <see cref="TrackConsumerLag"/>.</description></item>
/// </list>
/// </remarks>
public sealed class MessagingMetrics : IDisposable
{
    /// <summary>The meter name to enable in the metrics pipeline.</summary>
    public const string MeterName = "OnlineRl.Messaging";

    private readonly Counter<long> _published;
    private readonly Counter<long> _publishedBytes;
    private readonly Counter<long> _consumed;
    private readonly Counter<long> _deadLetters;
    private readonly Counter<long> _handlerFailures;
    private readonly bool _ownsMeter;
    private readonly ConcurrentDictionary<object, Func<IEnumerable<ConsumerLag>>> _lagSources = new();

    /// <summary>The process-wide instance used when none is given.</summary>
    public static MessagingMetrics Shared { get; } = new();

    /// <summary>Creates the instruments on a new meter.</summary>
    /// <param name="meterFactory">The DI meter factory, or null for a standalone meter.</param>
    public MessagingMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        Meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _published = Meter.CreateCounter<long>("onlinerl.messaging.published", "{message}", "Messages published, per topic.");
        _publishedBytes = Meter.CreateCounter<long>("onlinerl.messaging.published.size", "By", "Payload bytes published, per topic.");
        _consumed = Meter.CreateCounter<long>("onlinerl.messaging.consumed", "{message}", "Messages handled and acknowledged, per topic and group.");
        _deadLetters = Meter.CreateCounter<long>("onlinerl.messaging.dead_letters", "{message}", "Messages sent to the dead-letter topic, per source topic and reason.");
        _handlerFailures = Meter.CreateCounter<long>("onlinerl.messaging.handler_failures", "{failure}", "Handler exceptions, per topic and group.");
        Meter.CreateObservableGauge("onlinerl.messaging.consumer.lag", ObserveLag, "{message}",
            "Messages of the topic the group has not acknowledged yet, per topic and group.");
    }

    /// <summary>The meter holding the instruments.</summary>
    public Meter Meter { get; }

    /// <summary>Counts one published message.</summary>
    /// <param name="topic">The topic.</param>
    /// <param name="payloadBytes">The payload size.</param>
    public void Published(string topic, int payloadBytes)
    {
        var tag = new KeyValuePair<string, object?>("topic", topic);
        _published.Add(1, tag);
        _publishedBytes.Add(payloadBytes, tag);
    }

    /// <summary>Counts one handled and acknowledged message.</summary>
    /// <param name="topic">The topic.</param>
    /// <param name="group">The consumer group.</param>
    public void Consumed(string topic, string group) =>
        _consumed.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("group", group));

    /// <summary>Counts one dead-lettered message.</summary>
    /// <param name="topic">The topic the message came from.</param>
    /// <param name="reason">A low-cardinality category (see <see cref="DeadLetterReasons"/>).</param>
    public void DeadLettered(string topic, string reason) =>
        _deadLetters.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("reason", reason));

    /// <summary>Counts one handler exception.</summary>
    /// <param name="topic">The topic.</param>
    /// <param name="group">The consumer group.</param>
    public void HandlerFailed(string topic, string group) =>
        _handlerFailures.Add(1, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("group", group));

    /// <summary>
    /// Reports the consumer lag of <paramref name="source"/> (e.g. a bus's groups) whenever metrics are collected,
    /// until the returned registration is disposed.
    /// </summary>
    /// <param name="source">Returns the current lag of each known topic and group; called on the collecting thread.</param>
    public IDisposable TrackConsumerLag(Func<IEnumerable<ConsumerLag>> source)
    {
        var registration = new LagRegistration(this);
        _lagSources[registration] = source;
        return registration;
    }

    private IEnumerable<Measurement<long>> ObserveLag() =>
        _lagSources.Values.SelectMany(source => source()).Select(lag => new Measurement<long>(lag.Messages,
            new KeyValuePair<string, object?>("topic", lag.Topic), new KeyValuePair<string, object?>("group", lag.Group)));

    private sealed class LagRegistration(MessagingMetrics owner) : IDisposable
    {
        public void Dispose() => owner._lagSources.TryRemove(this, out _);
    }

    /// <summary>Disposes the meter when this instance created it.</summary>
    public void Dispose()
    {
        if (_ownsMeter) Meter.Dispose();
    }
}

/// <summary>How far one consumer group is behind on one topic.</summary>
/// <param name="Topic">The topic.</param>
/// <param name="Group">The consumer group.</param>
/// <param name="Messages">Messages of the topic the group has not acknowledged yet.</param>
public readonly record struct ConsumerLag(string Topic, string Group, long Messages);

/// <summary>The "reason" tag values of the dead-letter counter.</summary>
public static class DeadLetterReasons
{
    /// <summary>Payload over the size limit.</summary>
    public const string Oversized = "oversized";

    /// <summary>Bytes that do not parse.</summary>
    public const string Malformed = "malformed";

    /// <summary>Bytes that end inside a field (the tail of the message is missing).</summary>
    public const string Truncated = "truncated";

    /// <summary>Missing, too old or too new schema version.</summary>
    public const string UnsupportedSchemaVersion = "unsupported_schema_version";

    /// <summary>A field missing or out of range.</summary>
    public const string Invalid = "invalid";

    /// <summary>The "message-type" header names another type than the consumer expects.</summary>
    public const string WrongMessageType = "wrong_message_type";

    /// <summary>The handler failed on every allowed delivery.</summary>
    public const string HandlerFailed = "handler_failed";

    /// <summary>Delivered more often than allowed (e.g. the process died while handling it).</summary>
    public const string TooManyDeliveries = "too_many_deliveries";

    /// <summary>The reason of a payload the codec rejected.</summary>
    /// <param name="kind">The codec's error kind (not <see cref="DecodeErrorKind.None"/>).</param>
    public static string Of(DecodeErrorKind kind) => kind switch
    {
        DecodeErrorKind.Oversized => Oversized,
        DecodeErrorKind.Malformed => Malformed,
        DecodeErrorKind.Truncated => Truncated,
        DecodeErrorKind.UnsupportedSchemaVersion => UnsupportedSchemaVersion,
        DecodeErrorKind.Invalid => Invalid,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not an error kind."),
    };
}
