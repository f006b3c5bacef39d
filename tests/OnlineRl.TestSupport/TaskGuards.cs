namespace OnlineRl.TestSupport;

/// <summary>Bounds every await of a test, so that a hang fails the test instead of stalling the run.</summary>
public static class TaskGuards
{
    /// <summary>A failure guard, never a synchronisation: a correct test completes long before it.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    /// <summary>The task, failing with a <see cref="TimeoutException"/> after <see cref="Guard"/>.</summary>
    public static Task<T> Guarded<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Guard);

    /// <summary>The task, failing with a <see cref="TimeoutException"/> after <see cref="Guard"/>.</summary>
    public static Task<T> Guarded<T>(this Task<T> task) => task.WaitAsync(Guard);

    /// <summary>The task, failing with a <see cref="TimeoutException"/> after <see cref="Guard"/>.</summary>
    public static Task Guarded(this Task task) => task.WaitAsync(Guard);

    /// <summary>The task, failing with a <see cref="TimeoutException"/> after <see cref="Guard"/>.</summary>
    public static Task Guarded(this ValueTask task) => task.AsTask().WaitAsync(Guard);
}
