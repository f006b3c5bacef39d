namespace OnlineRl.Torch.NN;

/// <summary>y = x W^T + b, initialised as torch.nn.Linear (U(-k, k) with k = 1/sqrt(in_features)).</summary>
public sealed class Linear : Module<Tensor, Tensor>
{
    /// <summary>Creates the layer on <paramref name="device"/> with freshly drawn weights.</summary>
    public Linear(long in_features, long out_features, bool hasBias = true, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var bound = 1.0 / Math.Sqrt(in_features);
        using var scope = torch.NewDisposeScope();
        weight = RegisterParameter("weight", new Parameter(torch.empty(new[] { out_features, in_features }, dtype, device).uniform_(-bound, bound)));
        if (hasBias) bias = RegisterParameter("bias", new Parameter(torch.empty(new[] { out_features }, dtype, device).uniform_(-bound, bound)));
    }

    /// <summary>[out_features, in_features].</summary>
    public Parameter weight { get; }

    /// <summary>[out_features], or null.</summary>
    public Parameter? bias { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => torch.nn.functional.linear(input, weight, bias);
}
