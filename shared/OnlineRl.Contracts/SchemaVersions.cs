namespace OnlineRl.Contracts;

/// <summary>The schema versions this build writes and reads.</summary>
public static class SchemaVersions
{
    /// <summary>The version written into every new message.</summary>
    public const uint Current = 1;

    /// <summary>The oldest version this build still reads.</summary>
    public const uint MinSupported = 1;
}
