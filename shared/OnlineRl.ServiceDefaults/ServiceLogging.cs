using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace OnlineRl.ServiceDefaults;

/// <summary>
/// Console logging for service processes: one line per event, or JSON objects (one per line, for log
/// collectors) when the standard .NET setting <c>Logging:Console:FormatterName</c> is <c>json</c>
/// (environment variable <c>Logging__Console__FormatterName=json</c>). Levels follow <c>Logging:LogLevel</c>
/// (e.g. <c>Logging__LogLevel__Default=Debug</c>); the default is Information.
/// </summary>
public static class ServiceLogging
{
    /// <summary>Creates the logger factory.</summary>
    /// <param name="configuration">Where the "Logging" section is read (default: this process's environment variables).</param>
    public static ILoggerFactory CreateLoggerFactory(IConfiguration? configuration = null)
    {
        configuration ??= new ConfigurationBuilder().AddEnvironmentVariables().Build();
        return LoggerFactory.Create(logging =>
        {
            logging.SetMinimumLevel(LogLevel.Information);
            logging.AddConfiguration(configuration.GetSection("Logging"));
            // Registers every console formatter; the configured FormatterName picks one ("simple" when unset).
            logging.AddConsole();
            // Formatter settings go through options: AddSimpleConsole/AddJsonConsole would also pin FormatterName.
            logging.Services.Configure<SimpleConsoleFormatterOptions>(simple =>
            {
                simple.SingleLine = true;
                simple.UseUtcTimestamp = true;
                simple.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            });
            logging.Services.Configure<JsonConsoleFormatterOptions>(json =>
            {
                json.UseUtcTimestamp = true;
                json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        });
    }
}
