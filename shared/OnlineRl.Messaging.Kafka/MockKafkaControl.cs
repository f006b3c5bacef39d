using System.Globalization;
using Confluent.Kafka;

namespace OnlineRl.Messaging.Kafka;

/// <summary>
/// Text commands that inject faults into a <see cref="MockKafkaCluster"/>: the control channel of
/// <c>onlinerl kafka-mock</c> (one command per stdin line, one reply per stdout line), so that a test or an
/// operator can break the cluster while services use it.
/// </summary>
/// <remarks>
/// Commands (brokers are numbered from 1; API and error names are case-insensitive, underscores optional):
/// <list type="bullet">
/// <item><c>down BROKER</c>, <c>up BROKER</c>: take a broker down (connections closed and refused) and back up.</item>
/// <item><c>leader TOPIC PARTITION BROKER</c>: move a partition's leadership.</item>
/// <item><c>coordinator GROUP BROKER</c>: move a consumer group's coordinator.</item>
/// <item><c>errors API ERROR [ERROR...]</c>: answer the next requests of API (<see cref="KafkaApi"/>, e.g. produce,
/// fetch, offset_commit) with these errors (<see cref="ErrorCode"/> names or numbers, e.g. NotLeaderForPartition,
/// RequestTimedOut, Local_Transport: disconnect), one request each.</item>
/// <item><c>clear API</c>: drop queued errors of API.</item>
/// <item><c>rtt BROKER MILLISECONDS</c>: delay a broker's answers (0: none).</item>
/// </list>
/// The reply is <c>ok</c> or <c>error: WHY</c>.
/// </remarks>
public static class MockKafkaControl
{
    /// <summary>The commands, for usage texts.</summary>
    public const string Usage = "down B | up B | leader TOPIC PARTITION B | coordinator GROUP B | errors API ERROR... | clear API | rtt B MS";

    /// <summary>Runs one command line on <paramref name="cluster"/>; returns "ok" or "error: ..." (never throws for bad input).</summary>
    /// <param name="cluster">The cluster to change.</param>
    /// <param name="command">The command line.</param>
    public static string Execute(MockKafkaCluster cluster, string command)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(command);
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0) return "error: empty command; commands: " + Usage;
        try
        {
            switch (words[0].ToLowerInvariant())
            {
                case "down" when words.Length == 2:
                    cluster.SetBrokerDown(Number(words[1], "BROKER"));
                    break;
                case "up" when words.Length == 2:
                    cluster.SetBrokerUp(Number(words[1], "BROKER"));
                    break;
                case "leader" when words.Length == 4:
                    cluster.SetPartitionLeader(words[1], Number(words[2], "PARTITION"), Number(words[3], "BROKER"));
                    break;
                case "coordinator" when words.Length == 3:
                    cluster.SetGroupCoordinator(words[1], Number(words[2], "BROKER"));
                    break;
                case "errors" when words.Length >= 3:
                    cluster.PushRequestErrors(Parse<KafkaApi>(words[1], "API"), words[2..].Select(e => Parse<ErrorCode>(e, "ERROR")).ToArray());
                    break;
                case "clear" when words.Length == 2:
                    cluster.ClearRequestErrors(Parse<KafkaApi>(words[1], "API"));
                    break;
                case "rtt" when words.Length == 3:
                    cluster.SetBrokerRoundTripTime(Number(words[1], "BROKER"), TimeSpan.FromMilliseconds(Number(words[2], "MILLISECONDS")));
                    break;
                default:
                    return $"error: '{command.Trim()}' is not a command; commands: {Usage}";
            }
            return "ok";
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or ObjectDisposedException)
        {
            return "error: " + e.Message.ReplaceLineEndings(" ");
        }
    }

    private static int Number(string word, string what) =>
        int.TryParse(word, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"{what} '{word}' is not a whole number");

    /// <summary>An enum member by name (case and underscores ignored) or number.</summary>
    private static T Parse<T>(string word, string what) where T : struct, Enum
    {
        var wanted = word.Replace("_", "", StringComparison.Ordinal);
        foreach (var value in Enum.GetValues<T>())
            if (string.Equals(value.ToString().Replace("_", "", StringComparison.Ordinal), wanted, StringComparison.OrdinalIgnoreCase))
                return value;
        if (int.TryParse(word, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number) && Enum.IsDefined(typeof(T), Convert.ChangeType(number, Enum.GetUnderlyingType(typeof(T)), CultureInfo.InvariantCulture)))
            return (T)Enum.ToObject(typeof(T), number);
        throw new FormatException($"{what} '{word}' is not one of {string.Join(", ", Enum.GetNames<T>())}");
    }
}
