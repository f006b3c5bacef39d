namespace OnlineRl.TorchSharp.Tests;

// Deterministic memory management and error reporting of the binding.
public class MemoryAndErrorTests
{
    [Fact]
    public void TenThousandStepsInDisposeScopesLeaveLiveTensorCountUnchanged()
    {
        using var w = torch.randn(new long[] { 16, 16 }, requires_grad: true);
        using var x = torch.randn(new long[] { 8, 16 });
        // Warm up once so lazily created state (none expected) does not count as a leak.
        RunStep(w, x);
        // Tensors other tests dropped without disposing are finalized at random times: flush them first, so
        // that both counters below move only because of this loop.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var live = torch.LiveTensorCount;
        var finalized = torch.FinalizedTensorCount;
        for (var i = 0; i < 10_000; i++) RunStep(w, x);
        Assert.Equal(live, torch.LiveTensorCount);
        // Nothing was left to the garbage collector either (a leak it cleaned up would hide in the live count).
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(finalized, torch.FinalizedTensorCount);
    }

    private static void RunStep(Tensor w, Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var loss = x.matmul(w).tanh().square().mean();
        loss.backward();
        using (torch.no_grad())
        {
            var g = w.grad!;
            w.sub_(g * 1e-3);
        }
        w.grad = null;
    }

    [Fact]
    public void ScopeDisposesTemporariesButKeepsMovedResult()
    {
        Tensor kept, dropped;
        using (var scope = torch.NewDisposeScope())
        {
            dropped = torch.ones(new long[] { 2 });
            kept = scope.MoveToOuter(dropped * 3.0);
        }
        Assert.True(dropped.IsDisposed);
        Assert.False(kept.IsDisposed);
        Assert.Equal(new float[] { 3, 3 }, kept.data<float>());
        kept.Dispose();
    }

    [Fact]
    public void ShapeMismatchSurfacesLibtorchMessage()
    {
        using var a = torch.zeros(new long[] { 3, 4 });
        using var b = torch.zeros(new long[] { 5, 6 });
        var error = Assert.Throws<TorchException>(() => a.matmul(b));
        Assert.Contains("mat1 and mat2 shapes cannot be multiplied (3x4 and 5x6)", error.Message);
        Assert.DoesNotContain("frame #", error.Message);
    }

    [Fact]
    public void DisposedTensorGivesClearError()
    {
        var a = torch.zeros(new long[] { 2 });
        a.Dispose();
        var error = Assert.Throws<ObjectDisposedException>(() => a.add(1.0));
        Assert.Contains("disposed", error.Message);
    }
}
