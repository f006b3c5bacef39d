using OnlineRl.Pipeline;

namespace OnlineRl.Cli;

/// <summary>
/// The entry of `onlinerl` and `onlinerl-bench`: the malloc arena limit, the usage text, `COMMAND --help` (that
/// command's entry of the usage text), and usage mistakes.
/// </summary>
internal static class CommandHelp
{
    /// <summary>
    /// Caps malloc arenas (<see cref="MallocArenas.LimitOnce"/>), then prints <paramref name="usage"/> without a command or for --help (exit code 2 and 0), a command's entry for
    /// COMMAND --help (0), else runs <paramref name="dispatch"/> with the command and its options; a
    /// <see cref="UsageException"/> prints the error and the usage (2), as does --help after a command the usage
    /// does not list.
    /// </summary>
    public static async Task<int> RunAsync(string program, string usage, string[] args, Func<string, Options, Task<int>> dispatch)
    {
        // First, before the runtime's worker threads allocate: they would each get a malloc arena (see MallocArenas).
        // The benchmarks run under the same limit, so the measured code runs as it does in onlinerl.
        MallocArenas.LimitOnce();
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            if (args.Skip(1).Any(a => a is "-h" or "--help"))
            {
                Console.WriteLine(For(program, usage, args[0]) ?? throw new UsageException($"unknown command '{args[0]}'"));
                return 0;
            }
            return await dispatch(args[0], new Options(args.Skip(1)));
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}\n");
            Console.Error.WriteLine(usage);
            return 2;
        }
    }

    // Command entries start at this indentation in the usage text; their continuation lines are indented further.
    private const string EntryIndent = "  ";

    /// <summary>
    /// The usage line for <paramref name="command"/> of <paramref name="program"/>, its entry of <paramref name="usage"/> and the
    /// usage's environment notes; null for a command it does not list.
    /// </summary>
    public static string? For(string program, string usage, string command)
    {
        var lines = usage.Split('\n');
        var start = Array.FindIndex(lines, line => IsEntry(line) && Names(line).Contains(command));
        if (start < 0) return null;
        var end = start + 1;
        while (end < lines.Length && lines[end].Trim().Length > 0 && !IsEntry(lines[end])) end++;
        var entry = string.Join('\n', lines[start..end]);
        // The usage text's own environment notes apply to every command.
        var environment = lines.SkipWhile(line => !line.StartsWith("Environment:", StringComparison.Ordinal)).TakeWhile(line => line.Trim().Length > 0);
        return string.Join('\n', new[] { $"Usage: {program} {command} [options]", "", entry, "" }.Concat(environment)).TrimEnd();
    }

    private static bool IsEntry(string line) =>
        line.StartsWith(EntryIndent, StringComparison.Ordinal) && line.Length > EntryIndent.Length && line[EntryIndent.Length] != ' ';

    // "feeder | generator | scorer | learner  One service..." names four commands; "run        The all-in-one..." one.
    private static List<string> Names(string line)
    {
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var names = new List<string> { words[0] };
        for (var i = 1; i + 1 < words.Length && words[i] == "|"; i += 2) names.Add(words[i + 1]);
        return names;
    }
}
