using System.Runtime.InteropServices;
using TorchSharp.Modules;

namespace OnlineRl.TorchSharp.Tests;

// Dispose scopes, grad mode and errors as the project's code relies on them.
public class MemoryAndErrorTests
{
    // TorchSharp counts live tensors per thread; every step below runs on the test's thread.
    private static long LiveTensors => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    [Fact]
    public void Ten_thousand_steps_in_dispose_scopes_leave_the_live_tensor_count_unchanged()
    {
        using var w = new Parameter(torch.randn(16, 16));
        using var x = torch.randn(8, 16);
        // Warm up once so that lazily created state (none expected) does not count as a leak.
        RunStep(w, x);
        var live = LiveTensors;
        for (var i = 0; i < 10_000; i++) RunStep(w, x);
        Assert.Equal(live, LiveTensors);
    }

    // One training step as the learners write it: forward, backward, an in-place update under no_grad.
    private static void RunStep(Parameter w, Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var loss = x.matmul(w).tanh().square().mean();
        loss.backward();
        using (torch.no_grad()) w.sub_(w.grad! * 1e-3);
        w.grad = null;
    }

    [Fact]
    public void Scope_disposes_temporaries_but_keeps_what_is_moved_out_or_detached()
    {
        Tensor kept, detached, dropped;
        var live = LiveTensors;
        using (var scope = torch.NewDisposeScope())
        {
            dropped = torch.ones(2);
            kept = scope.MoveToOuter(dropped * 3.0);
            detached = (dropped * 5.0).DetachFromDisposeScope();
        }
        Assert.True(dropped.IsInvalid);
        Assert.False(kept.IsInvalid);
        Assert.Equal(new float[] { 3, 3 }, kept.data<float>().ToArray());
        Assert.Equal(new float[] { 5, 5 }, detached.data<float>().ToArray());
        Assert.Equal(live + 2, LiveTensors);
        kept.Dispose();
        detached.Dispose();
        Assert.Equal(live, LiveTensors);
    }

    [Fact]
    public void no_grad_records_no_graph_and_ends_with_its_block()
    {
        // The sampler, the reference model and in-place weight updates run under no_grad.
        using var scope = torch.NewDisposeScope();
        var w = torch.ones(3).requires_grad_();
        using (torch.no_grad())
        {
            Assert.False((w * 2.0).requires_grad);
            Assert.False(torch.is_grad_enabled());
        }
        Assert.True(torch.is_grad_enabled());
        Assert.True((w * 2.0).requires_grad);
    }

    [Fact]
    public void A_libtorch_error_surfaces_as_a_catchable_exception_with_its_message()
    {
        // A checkpoint of another width fails in the model's first projection. (Not every TorchSharp 0.107 call
        // is guarded like this: its native matmul, Generator.set_state and torch.set_rng_state let libtorch's
        // exception escape and abort the process, so the project calls those only on inputs it has checked.)
        using var scope = torch.NewDisposeScope();
        var x = torch.zeros(3, 4);
        var error = Assert.ThrowsAny<ExternalException>(() => torch.nn.functional.linear(x, torch.zeros(5, 6)));
        Assert.Contains("mat1 and mat2 shapes cannot be multiplied (3x4 and 6x5)", error.Message);
        // The process and the library carry on.
        Assert.Equal(new long[] { 3, 5 }, torch.nn.functional.linear(x, torch.zeros(5, 4)).shape);
    }

    [Fact]
    public void A_disposed_tensor_gives_a_catchable_error_not_a_crash()
    {
        // KvCache.SelectRows and the weight swap dispose tensors explicitly: a use after that must throw.
        var a = torch.zeros(2);
        a.Dispose();
        Assert.ThrowsAny<InvalidOperationException>(() => a.add(1.0));
    }
}
