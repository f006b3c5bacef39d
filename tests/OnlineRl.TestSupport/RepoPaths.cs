namespace OnlineRl.TestSupport;

/// <summary>Locations in the repository checkout the tests run from.</summary>
public static class RepoPaths
{
    /// <summary>The folder holding OnlineRl.sln, found upwards from the test assembly.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>A path under the repository root.</summary>
    public static string Of(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnlineRl.sln"))) return dir.FullName;
        throw new InvalidOperationException($"OnlineRl.sln not found above {AppContext.BaseDirectory}");
    }
}
