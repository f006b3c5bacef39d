using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OnlineRl.TestSupport;

/// <summary>An <see cref="ILogger"/> that keeps every formatted line (with its exception), to check what a component logs.</summary>
public sealed class CapturingLogger : ILogger
{
    private readonly ConcurrentQueue<string> lines = new();

    /// <summary>Everything logged so far, one entry per call: "Level: message" plus the exception text.</summary>
    public IReadOnlyList<string> Lines => lines.ToArray();

    /// <inheritdoc />
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    /// <inheritdoc />
    public bool IsEnabled(LogLevel logLevel) => true;

    /// <inheritdoc />
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        lines.Enqueue($"{logLevel}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
}
