using System.Runtime.InteropServices;

namespace OnlineRl.Pipeline;

/// <summary>
/// Caps glibc's malloc arenas. glibc gives threads that contend for the heap arenas of their own, up to 8 per core,
/// and an arena's freed memory mostly stays resident. A learner (libtorch allocating from pool threads, with the
/// thread pool kept at 16+ threads for the bus) grew from 600 to 930 MiB over a 20-minute soak with its tensors
/// and managed heap flat; started with MALLOC_ARENA_MAX=2 it stayed at 440-460 MiB for 12 minutes (docs/soak).
/// Set at run time (mallopt) the limit leaves the arenas made before it: the same learner then held 600-710 MiB,
/// flat. So the environment variable, read by glibc at start-up, is the first choice (the Docker image,
/// run.sh and <see cref="ServiceProcess"/> set it), and <see cref="LimitOnce"/> the fallback; with the variable set it
/// does nothing. The tools call it first thing (their shared entry), <see cref="PipelineServices.ConfigureProcess"/>
/// again for other hosts of the library (tests): whichever comes first sets the limit.
/// </summary>
public static partial class MallocArenas
{
    /// <summary>glibc's environment variable for the limit.</summary>
    public const string EnvironmentVariable = "MALLOC_ARENA_MAX";

    /// <summary>The arenas a service process keeps by default.</summary>
    public const int DefaultLimit = 2;

    // mallopt's parameter number for the arena limit (malloc.h).
    private const int MArenaMax = -8;

    // 1 once a process has called LimitOnce.
    private static int limitedOnce;

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);

    /// <summary>
    /// Limits the process to <paramref name="arenas"/> malloc arenas from now on. Returns false where that is not
    /// possible or not wanted: not Linux, a C library without mallopt, or MALLOC_ARENA_MAX set by the user.
    /// </summary>
    public static bool Limit(int arenas = DefaultLimit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(arenas, 1);
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(EnvironmentVariable) is not null) return false;
        try { return Mallopt(MArenaMax, arenas) == 1; }
        catch (EntryPointNotFoundException) { return false; }
        catch (DllNotFoundException) { return false; }
    }

    /// <summary>
    /// <see cref="Limit"/> with <see cref="DefaultLimit"/> the first time a process calls it; later calls do nothing,
    /// so the earliest caller (a tool's entry, before the runtime's threads allocate) is the one that counts.
    /// </summary>
    public static void LimitOnce()
    {
        if (Interlocked.Exchange(ref limitedOnce, 1) == 0) Limit();
    }
}
