using OnlineRl.Pipeline;

namespace OnlineRl.Pipeline.Tests;

/// <summary>The malloc arena cap every service sets (its effect on memory is measured by the soak, docs/soak).</summary>
public class MallocArenasTests
{
    [SkippableFact]
    public void Glibc_accepts_the_arena_limit_unless_the_user_set_one()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "glibc's mallopt is Linux only");
        Skip.If(Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is not null, "MALLOC_ARENA_MAX is set here: the limit is the user's");
        Assert.True(MallocArenas.Limit());
        Assert.True(MallocArenas.Limit(MallocArenas.DefaultLimit));
        Assert.Throws<ArgumentOutOfRangeException>(() => MallocArenas.Limit(0));
    }
}
