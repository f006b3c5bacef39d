namespace OnlineRl.TorchSharp.Tests;

/// <summary>A fact that runs only where libtorch sees a CUDA GPU; elsewhere it is skipped with the reason.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!torch.cuda.is_available())
            Skip = $"needs a CUDA GPU: libtorch {torch.__version__} reports none (the CPU backend, or no device)";
    }
}

// The same computations on the GPU and the CPU must agree (to float32 rounding of different kernels).
public class CudaTests
{
    private static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        var e = expected.cpu().to(ScalarType.Float64).data<double>().ToArray();
        var a = actual.cpu().to(ScalarType.Float64).data<double>().ToArray();
        Assert.Equal(e.Length, a.Length);
        for (var i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= tolerance * (1 + Math.Abs(e[i])), $"element {i}: cpu {e[i]} vs cuda {a[i]}");
    }

    [CudaFact]
    public void ForwardAndBackwardMatchCpu()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var xCpu = torch.randn(32, 64);
        var wCpu = torch.randn(64, 16).requires_grad_();
        var wCuda = wCpu.detach().cuda().requires_grad_();
        Assert.Equal(DeviceType.CUDA, wCuda.device_type);

        var lossCpu = xCpu.matmul(wCpu).log_softmax(-1).square().mean();
        var lossCuda = xCpu.cuda().matmul(wCuda).log_softmax(-1).square().mean();
        lossCpu.backward();
        lossCuda.backward();

        AssertClose(lossCpu, lossCuda, 1e-4);
        AssertClose(wCpu.grad!, wCuda.grad!, 1e-4);
    }

    [CudaFact]
    public void DtypesRoundTripThroughTheGpu()
    {
        using var scope = torch.NewDisposeScope();
        var values = torch.tensor(new float[] { 1.5f, -2.25f, 3.0f, 1e-3f });
        foreach (var dtype in new[] { ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float32, ScalarType.Float64 })
        {
            var onGpu = values.to(dtype, torch.CUDA);
            Assert.Equal(dtype, onGpu.dtype);
            AssertClose(values.to(dtype), onGpu, 0);
        }
    }
}
