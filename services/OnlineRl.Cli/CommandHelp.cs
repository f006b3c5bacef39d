namespace OnlineRl.Cli;

/// <summary>`onlinerl COMMAND --help`: that command's entry of the usage text.</summary>
internal static class CommandHelp
{
    // Command entries start at this indentation in the usage text; their continuation lines are indented further.
    private const string EntryIndent = "  ";

    /// <summary>
    /// The usage line for <paramref name="command"/> and its entry of <paramref name="usage"/>; the whole usage
    /// text, after a line saying so, for a command it does not list.
    /// </summary>
    public static string For(string usage, string command)
    {
        var lines = usage.Split('\n');
        var start = Array.FindIndex(lines, line => IsEntry(line) && Names(line).Contains(command));
        if (start < 0) return $"unknown command '{command}'\n\n{usage}";
        var end = start + 1;
        while (end < lines.Length && lines[end].Trim().Length > 0 && !IsEntry(lines[end])) end++;
        var entry = string.Join('\n', lines[start..end]);
        return $"Usage: onlinerl {command} [options]\n\n{entry}\n\nEnvironment: ONLINERL_NUM_THREADS sets libtorch's thread count (default: all cores).";
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
