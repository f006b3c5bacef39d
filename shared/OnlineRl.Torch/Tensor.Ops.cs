namespace OnlineRl.Torch;

// Tensor operations, named as in PyTorch. Each is one native call; see native/ops.cpp.
public partial class Tensor
{
    private Tensor Unary(UnaryOp op) => Wrap(Native.orl_unary((int)op, Handle));
    private Tensor Binary(BinaryOp op, Tensor other) => Wrap(Native.orl_binary((int)op, Handle, other.Handle));
    private Tensor Binary(BinaryOp op, double other) => Wrap(Native.orl_binary_scalar((int)op, Handle, other, 0));
    private Tensor Binary(BinaryOp op, long other) => Wrap(Native.orl_binary_scalar((int)op, Handle, other, 1));

    private static long[] Dims(long[]? dims) => dims ?? Array.Empty<long>();

    // ---- element-wise, one input ----------------------------------------------------------------

    /// <summary>-x.</summary>
    public Tensor neg() => Unary(UnaryOp.Neg);
    /// <summary>e^x.</summary>
    public Tensor exp() => Unary(UnaryOp.Exp);
    /// <summary>Natural logarithm.</summary>
    public Tensor log() => Unary(UnaryOp.Log);
    /// <summary>Square root.</summary>
    public Tensor sqrt() => Unary(UnaryOp.Sqrt);
    /// <summary>1 / sqrt(x).</summary>
    public Tensor rsqrt() => Unary(UnaryOp.Rsqrt);
    /// <summary>|x|.</summary>
    public Tensor abs() => Unary(UnaryOp.Abs);
    /// <summary>1 / (1 + e^-x).</summary>
    public Tensor sigmoid() => Unary(UnaryOp.Sigmoid);
    /// <summary>Hyperbolic tangent.</summary>
    public Tensor tanh() => Unary(UnaryOp.Tanh);
    /// <summary>max(x, 0).</summary>
    public Tensor relu() => Unary(UnaryOp.Relu);
    /// <summary>x * sigmoid(x) (SiLU / swish).</summary>
    public Tensor silu() => Unary(UnaryOp.Silu);
    /// <summary>GELU, exact (erf) or with the tanh approximation.</summary>
    public Tensor gelu(bool tanhApproximation = false) => Unary(tanhApproximation ? UnaryOp.GeluTanh : UnaryOp.Gelu);
    /// <summary>Sine.</summary>
    public Tensor sin() => Unary(UnaryOp.Sin);
    /// <summary>Cosine.</summary>
    public Tensor cos() => Unary(UnaryOp.Cos);
    /// <summary>Element-wise NOT (bool result).</summary>
    public Tensor logical_not() => Unary(UnaryOp.LogicalNot);
    /// <summary>Rounds down.</summary>
    public Tensor floor() => Unary(UnaryOp.Floor);
    /// <summary>Rounds up.</summary>
    public Tensor ceil() => Unary(UnaryOp.Ceil);
    /// <summary>Rounds half to even.</summary>
    public Tensor round() => Unary(UnaryOp.Round);
    /// <summary>-1, 0 or 1.</summary>
    public Tensor sign() => Unary(UnaryOp.Sign);
    /// <summary>x^2.</summary>
    public Tensor square() => Unary(UnaryOp.Square);
    /// <summary>1 / x.</summary>
    public Tensor reciprocal() => Unary(UnaryOp.Reciprocal);
    /// <summary>log(1 + x), accurate near 0.</summary>
    public Tensor log1p() => Unary(UnaryOp.Log1p);
    /// <summary>e^x - 1, accurate near 0.</summary>
    public Tensor expm1() => Unary(UnaryOp.Expm1);
    /// <summary>True where NaN.</summary>
    public Tensor isnan() => Unary(UnaryOp.IsNan);
    /// <summary>True where +-infinity.</summary>
    public Tensor isinf() => Unary(UnaryOp.IsInf);
    /// <summary>True where neither NaN nor infinite.</summary>
    public Tensor isfinite() => Unary(UnaryOp.IsFinite);

    // ---- element-wise, two inputs (broadcasting) ------------------------------------------------

    /// <summary>this + other.</summary>
    public Tensor add(Tensor other) => Binary(BinaryOp.Add, other);
    /// <summary>this + other.</summary>
    public Tensor add(double other) => Binary(BinaryOp.Add, other);
    /// <summary>this + other.</summary>
    public Tensor add(long other) => Binary(BinaryOp.Add, other);
    /// <summary>this - other.</summary>
    public Tensor sub(Tensor other) => Binary(BinaryOp.Sub, other);
    /// <summary>this - other.</summary>
    public Tensor sub(double other) => Binary(BinaryOp.Sub, other);
    /// <summary>this - other.</summary>
    public Tensor sub(long other) => Binary(BinaryOp.Sub, other);
    /// <summary>this * other.</summary>
    public Tensor mul(Tensor other) => Binary(BinaryOp.Mul, other);
    /// <summary>this * other.</summary>
    public Tensor mul(double other) => Binary(BinaryOp.Mul, other);
    /// <summary>this * other.</summary>
    public Tensor mul(long other) => Binary(BinaryOp.Mul, other);
    /// <summary>this / other (true division).</summary>
    public Tensor div(Tensor other) => Binary(BinaryOp.Div, other);
    /// <summary>this / other (true division).</summary>
    public Tensor div(double other) => Binary(BinaryOp.Div, other);
    /// <summary>this / other (true division).</summary>
    public Tensor div(long other) => Binary(BinaryOp.Div, other);
    /// <summary>floor(this / other).</summary>
    public Tensor floor_divide(Tensor other) => Binary(BinaryOp.FloorDivide, other);
    /// <summary>floor(this / other).</summary>
    public Tensor floor_divide(long other) => Binary(BinaryOp.FloorDivide, other);
    /// <summary>Python-style modulus (sign of the divisor).</summary>
    public Tensor remainder(Tensor other) => Binary(BinaryOp.Remainder, other);
    /// <summary>Python-style modulus (sign of the divisor).</summary>
    public Tensor remainder(long other) => Binary(BinaryOp.Remainder, other);
    /// <summary>this ^ exponent.</summary>
    public Tensor pow(Tensor exponent) => Binary(BinaryOp.Pow, exponent);
    /// <summary>this ^ exponent.</summary>
    public Tensor pow(double exponent) => Binary(BinaryOp.Pow, exponent);
    /// <summary>Element-wise maximum.</summary>
    public Tensor maximum(Tensor other) => Binary(BinaryOp.Maximum, other);
    /// <summary>Element-wise minimum.</summary>
    public Tensor minimum(Tensor other) => Binary(BinaryOp.Minimum, other);
    /// <summary>this == other (bool result).</summary>
    public Tensor eq(Tensor other) => Binary(BinaryOp.Eq, other);
    /// <summary>this == other (bool result).</summary>
    public Tensor eq(double other) => Binary(BinaryOp.Eq, other);
    /// <summary>this == other (bool result).</summary>
    public Tensor eq(long other) => Binary(BinaryOp.Eq, other);
    /// <summary>this != other (bool result).</summary>
    public Tensor ne(Tensor other) => Binary(BinaryOp.Ne, other);
    /// <summary>this != other (bool result).</summary>
    public Tensor ne(double other) => Binary(BinaryOp.Ne, other);
    /// <summary>this != other (bool result).</summary>
    public Tensor ne(long other) => Binary(BinaryOp.Ne, other);
    /// <summary>this &lt; other (bool result).</summary>
    public Tensor lt(Tensor other) => Binary(BinaryOp.Lt, other);
    /// <summary>this &lt; other (bool result).</summary>
    public Tensor lt(double other) => Binary(BinaryOp.Lt, other);
    /// <summary>this &lt;= other (bool result).</summary>
    public Tensor le(Tensor other) => Binary(BinaryOp.Le, other);
    /// <summary>this &lt;= other (bool result).</summary>
    public Tensor le(double other) => Binary(BinaryOp.Le, other);
    /// <summary>this &gt; other (bool result).</summary>
    public Tensor gt(Tensor other) => Binary(BinaryOp.Gt, other);
    /// <summary>this &gt; other (bool result).</summary>
    public Tensor gt(double other) => Binary(BinaryOp.Gt, other);
    /// <summary>this &gt;= other (bool result).</summary>
    public Tensor ge(Tensor other) => Binary(BinaryOp.Ge, other);
    /// <summary>this &gt;= other (bool result).</summary>
    public Tensor ge(double other) => Binary(BinaryOp.Ge, other);
    /// <summary>Element-wise AND (bool result).</summary>
    public Tensor logical_and(Tensor other) => Binary(BinaryOp.LogicalAnd, other);
    /// <summary>Element-wise OR (bool result).</summary>
    public Tensor logical_or(Tensor other) => Binary(BinaryOp.LogicalOr, other);

    /// <summary>x + y.</summary>
    public static Tensor operator +(Tensor x, Tensor y) => x.add(y);
    /// <summary>x + y.</summary>
    public static Tensor operator +(Tensor x, double y) => x.add(y);
    /// <summary>x + y.</summary>
    public static Tensor operator +(Tensor x, long y) => x.add(y);
    /// <summary>x + y.</summary>
    public static Tensor operator +(double x, Tensor y) => y.add(x);
    /// <summary>x + y.</summary>
    public static Tensor operator +(long x, Tensor y) => y.add(x);
    /// <summary>x - y.</summary>
    public static Tensor operator -(Tensor x, Tensor y) => x.sub(y);
    /// <summary>x - y.</summary>
    public static Tensor operator -(Tensor x, double y) => x.sub(y);
    /// <summary>x - y.</summary>
    public static Tensor operator -(Tensor x, long y) => x.sub(y);
    /// <summary>x - y.</summary>
    public static Tensor operator -(double x, Tensor y) => Wrap(Native.orl_scalar_binary((int)BinaryOp.Sub, x, 0, y.Handle));
    /// <summary>x - y.</summary>
    public static Tensor operator -(long x, Tensor y) => Wrap(Native.orl_scalar_binary((int)BinaryOp.Sub, x, 1, y.Handle));
    /// <summary>x * y.</summary>
    public static Tensor operator *(Tensor x, Tensor y) => x.mul(y);
    /// <summary>x * y.</summary>
    public static Tensor operator *(Tensor x, double y) => x.mul(y);
    /// <summary>x * y.</summary>
    public static Tensor operator *(Tensor x, long y) => x.mul(y);
    /// <summary>x * y.</summary>
    public static Tensor operator *(double x, Tensor y) => y.mul(x);
    /// <summary>x * y.</summary>
    public static Tensor operator *(long x, Tensor y) => y.mul(x);
    /// <summary>x / y.</summary>
    public static Tensor operator /(Tensor x, Tensor y) => x.div(y);
    /// <summary>x / y.</summary>
    public static Tensor operator /(Tensor x, double y) => x.div(y);
    /// <summary>x / y.</summary>
    public static Tensor operator /(Tensor x, long y) => x.div(y);
    /// <summary>x / y.</summary>
    public static Tensor operator /(double x, Tensor y) => Wrap(Native.orl_scalar_binary((int)BinaryOp.Div, x, 0, y.Handle));
    /// <summary>-x.</summary>
    public static Tensor operator -(Tensor x) => x.neg();

    // ---- in place -----------------------------------------------------------------------------

    /// <summary>this += other; returns this.</summary>
    public Tensor add_(Tensor other) { Native.Check(Native.orl_binary_((int)BinaryOp.Add, Handle, other.Handle)); return this; }
    /// <summary>this += other; returns this.</summary>
    public Tensor add_(double other) { Native.Check(Native.orl_binary_scalar_((int)BinaryOp.Add, Handle, other, 0)); return this; }
    /// <summary>this -= other; returns this.</summary>
    public Tensor sub_(Tensor other) { Native.Check(Native.orl_binary_((int)BinaryOp.Sub, Handle, other.Handle)); return this; }
    /// <summary>this *= other; returns this.</summary>
    public Tensor mul_(Tensor other) { Native.Check(Native.orl_binary_((int)BinaryOp.Mul, Handle, other.Handle)); return this; }
    /// <summary>this *= other; returns this.</summary>
    public Tensor mul_(double other) { Native.Check(Native.orl_binary_scalar_((int)BinaryOp.Mul, Handle, other, 0)); return this; }
    /// <summary>this /= other; returns this.</summary>
    public Tensor div_(double other) { Native.Check(Native.orl_binary_scalar_((int)BinaryOp.Div, Handle, other, 0)); return this; }
    /// <summary>Sets every element to 0; returns this.</summary>
    public Tensor zero_() { Native.Check(Native.orl_zero_(Handle)); return this; }
    /// <summary>Sets every element to <paramref name="value"/>; returns this.</summary>
    public Tensor fill_(double value) { Native.Check(Native.orl_fill_(Handle, value, 0)); return this; }
    /// <summary>Copies <paramref name="source"/> (broadcast, converted) into this; returns this.</summary>
    public Tensor copy_(Tensor source) { Native.Check(Native.orl_copy_(Handle, source.Handle)); return this; }
    /// <summary>Fills with U(low, high) from the global generator; returns this.</summary>
    public Tensor uniform_(double low = 0, double high = 1) { Native.Check(Native.orl_uniform_(Handle, low, high)); return this; }
    /// <summary>Fills with N(mean, std^2) from the global generator; returns this.</summary>
    public Tensor normal_(double mean = 0, double std = 1) { Native.Check(Native.orl_normal_(Handle, mean, std)); return this; }

    // ---- selection ----------------------------------------------------------------------------

    /// <summary>Limits values to [min, max]; either bound may be omitted.</summary>
    public Tensor clamp(double? min = null, double? max = null) =>
        Wrap(Native.orl_clamp(Handle, min.HasValue ? 1 : 0, min ?? 0, max.HasValue ? 1 : 0, max ?? 0));

    /// <summary>Limits values element-wise to tensors [min, max]; either bound may be null.</summary>
    public Tensor clamp(Tensor? min, Tensor? max)
    {
        using var bounds = new HandleArray(new[] { min ?? this, max ?? this });
        return Wrap(Native.orl_clamp_tensor(Handle, min is null ? IntPtr.Zero : bounds.Pointers[0], max is null ? IntPtr.Zero : bounds.Pointers[1]));
    }

    /// <summary>A copy with <paramref name="value"/> where <paramref name="mask"/> is true.</summary>
    public Tensor masked_fill(Tensor mask, double value) => Wrap(Native.orl_masked_fill(Handle, mask.Handle, value, 0));

    /// <summary>The elements where <paramref name="mask"/> is true, as a 1-D tensor.</summary>
    public Tensor masked_select(Tensor mask) => Wrap(Native.orl_masked_select(Handle, mask.Handle));

    // ---- reductions ---------------------------------------------------------------------------

    private Tensor Reduce(ReduceOp op, long[]? dims, bool keepdim)
    {
        var d = Dims(dims);
        return Wrap(Native.orl_reduce((int)op, Handle, d, d.Length, keepdim ? 1 : 0));
    }

    /// <summary>Sum over <paramref name="dims"/> (all when null).</summary>
    public Tensor sum(long[]? dims = null, bool keepdim = false) => Reduce(ReduceOp.Sum, dims, keepdim);
    /// <summary>Sum over one dimension.</summary>
    public Tensor sum(long dim, bool keepdim = false) => Reduce(ReduceOp.Sum, new[] { dim }, keepdim);
    /// <summary>Mean over <paramref name="dims"/> (all when null).</summary>
    public Tensor mean(long[]? dims = null, bool keepdim = false) => Reduce(ReduceOp.Mean, dims, keepdim);
    /// <summary>Mean over one dimension.</summary>
    public Tensor mean(long dim, bool keepdim = false) => Reduce(ReduceOp.Mean, new[] { dim }, keepdim);
    /// <summary>Largest value over <paramref name="dims"/> (all when null).</summary>
    public Tensor amax(long[]? dims = null, bool keepdim = false) => Reduce(ReduceOp.Amax, dims, keepdim);
    /// <summary>Smallest value over <paramref name="dims"/> (all when null).</summary>
    public Tensor amin(long[]? dims = null, bool keepdim = false) => Reduce(ReduceOp.Amin, dims, keepdim);
    /// <summary>The largest element (0-dim).</summary>
    public Tensor max() => Reduce(ReduceOp.Amax, null, false);
    /// <summary>The smallest element (0-dim).</summary>
    public Tensor min() => Reduce(ReduceOp.Amin, null, false);
    /// <summary>log(sum(exp(x))) over <paramref name="dims"/>, computed stably.</summary>
    public Tensor logsumexp(long[] dims, bool keepdim = false) => Reduce(ReduceOp.LogSumExp, dims, keepdim);
    /// <summary>log(sum(exp(x))) over one dimension.</summary>
    public Tensor logsumexp(long dim, bool keepdim = false) => Reduce(ReduceOp.LogSumExp, new[] { dim }, keepdim);
    /// <summary>Product over one dimension (all when null).</summary>
    public Tensor prod(long? dim = null, bool keepdim = false) => Reduce(ReduceOp.Prod, dim.HasValue ? new[] { dim.Value } : null, keepdim);
    /// <summary>True where all elements are true (over <paramref name="dims"/>, all when null).</summary>
    public Tensor all(long[]? dims = null, bool keepdim = false) => Reduce(ReduceOp.All, dims, keepdim);
    /// <summary>True where any element is true (over <paramref name="dims"/>, all when null).</summary>
    public Tensor any(long[]? dims = null, bool keepdim = false) => Reduce(ReduceOp.Any, dims, keepdim);

    /// <summary>Variance with Bessel's correction by default (correction = 1).</summary>
    public Tensor var(long[]? dims = null, long correction = 1, bool keepdim = false)
    {
        var d = Dims(dims);
        return Wrap(Native.orl_var(Handle, d, d.Length, correction, keepdim ? 1 : 0, 0));
    }

    /// <summary>Standard deviation with Bessel's correction by default (correction = 1).</summary>
    public Tensor std(long[]? dims = null, long correction = 1, bool keepdim = false)
    {
        var d = Dims(dims);
        return Wrap(Native.orl_var(Handle, d, d.Length, correction, keepdim ? 1 : 0, 1));
    }

    /// <summary>The p-norm over <paramref name="dims"/> (all when null).</summary>
    public Tensor norm(double p = 2, long[]? dims = null, bool keepdim = false)
    {
        var d = Dims(dims);
        return Wrap(Native.orl_norm(Handle, p, d, d.Length, keepdim ? 1 : 0));
    }

    /// <summary>Index of the largest element along <paramref name="dim"/> (of the flattened tensor when null).</summary>
    public Tensor argmax(long? dim = null, bool keepdim = false) =>
        Wrap(Native.orl_argextreme(Handle, 1, dim.HasValue ? 1 : 0, dim ?? 0, keepdim ? 1 : 0));

    /// <summary>Index of the smallest element along <paramref name="dim"/> (of the flattened tensor when null).</summary>
    public Tensor argmin(long? dim = null, bool keepdim = false) =>
        Wrap(Native.orl_argextreme(Handle, 0, dim.HasValue ? 1 : 0, dim ?? 0, keepdim ? 1 : 0));

    /// <summary>Largest values along <paramref name="dim"/> and their indices.</summary>
    public (Tensor values, Tensor indices) max(long dim, bool keepdim = false)
    {
        Native.Check(Native.orl_max_dim(Handle, dim, keepdim ? 1 : 0, 1, out var values, out var indices));
        return (new Tensor(values), new Tensor(indices));
    }

    /// <summary>Smallest values along <paramref name="dim"/> and their indices.</summary>
    public (Tensor values, Tensor indices) min(long dim, bool keepdim = false)
    {
        Native.Check(Native.orl_max_dim(Handle, dim, keepdim ? 1 : 0, 0, out var values, out var indices));
        return (new Tensor(values), new Tensor(indices));
    }

    /// <summary>softmax along <paramref name="dim"/>.</summary>
    public Tensor softmax(long dim) => Wrap(Native.orl_softmax(Handle, dim, 0));

    /// <summary>log(softmax) along <paramref name="dim"/>, computed stably.</summary>
    public Tensor log_softmax(long dim) => Wrap(Native.orl_softmax(Handle, dim, 1));

    /// <summary>Running sum along <paramref name="dim"/>.</summary>
    public Tensor cumsum(long dim) => Wrap(Native.orl_cumsum(Handle, dim));

    /// <summary>The <paramref name="k"/> largest (or smallest) values along <paramref name="dim"/> and their indices.</summary>
    public (Tensor values, Tensor indices) topk(long k, long dim = -1, bool largest = true, bool sorted = true)
    {
        Native.Check(Native.orl_topk(Handle, k, dim, largest ? 1 : 0, sorted ? 1 : 0, out var values, out var indices));
        return (new Tensor(values), new Tensor(indices));
    }

    /// <summary>Values sorted along <paramref name="dim"/> and the permutation that sorts them.</summary>
    public (Tensor values, Tensor indices) sort(long dim = -1, bool descending = false, bool stable = false)
    {
        Native.Check(Native.orl_sort(Handle, dim, descending ? 1 : 0, stable ? 1 : 0, out var values, out var indices));
        return (new Tensor(values), new Tensor(indices));
    }

    // ---- linear algebra -----------------------------------------------------------------------

    /// <summary>Matrix product with PyTorch's broadcasting rules (vectors, matrices, batches).</summary>
    public Tensor matmul(Tensor other) => Wrap(Native.orl_matmul(Handle, other.Handle));

    /// <summary>Batched matrix product of [B, n, m] and [B, m, p].</summary>
    public Tensor bmm(Tensor other) => Wrap(Native.orl_bmm(Handle, other.Handle));

    // ---- indexing -----------------------------------------------------------------------------

    /// <summary>The entries of <paramref name="index"/> along <paramref name="dim"/>.</summary>
    public Tensor index_select(long dim, Tensor index) => Wrap(Native.orl_index_select(Handle, dim, index.Handle));

    /// <summary>out[i][j] = this[i][index[i][j]] for dim 1 (and likewise for other dims).</summary>
    public Tensor gather(long dim, Tensor index) => Wrap(Native.orl_gather(Handle, dim, index.Handle));

    /// <summary>A copy with <paramref name="source"/> written at <paramref name="index"/> along <paramref name="dim"/>.</summary>
    public Tensor scatter(long dim, Tensor index, Tensor source) => Wrap(Native.orl_scatter(Handle, dim, index.Handle, source.Handle, 0));

    /// <summary>A copy with <paramref name="source"/> added at <paramref name="index"/> along <paramref name="dim"/>.</summary>
    public Tensor scatter_add(long dim, Tensor index, Tensor source) => Wrap(Native.orl_scatter(Handle, dim, index.Handle, source.Handle, 1));

    /// <summary>Draws <paramref name="samples"/> indices per row with probabilities proportional to this tensor.</summary>
    public Tensor multinomial(long samples, bool replacement = false) => Wrap(Native.orl_multinomial(Handle, samples, replacement ? 1 : 0));

    /// <summary>Like <see cref="multinomial(long, bool)"/>, drawing from <paramref name="generator"/> instead of the global stream.</summary>
    public Tensor multinomial(long samples, bool replacement, Generator generator) =>
        Wrap(Native.orl_multinomial_gen(Handle, samples, replacement ? 1 : 0, generator.Handle));

    /// <summary>Row <paramref name="index"/> of the first dimension (a view).</summary>
    public Tensor this[long index] => select(0, index);

    // ---- shape --------------------------------------------------------------------------------

    /// <summary>A view with another shape (one size may be -1); the tensor must be compatible in memory.</summary>
    public Tensor view(params long[] shape) => Wrap(Native.orl_view(Handle, shape, shape.Length));
    /// <summary>Another shape (one size may be -1); a view when possible, else a copy.</summary>
    public Tensor reshape(params long[] shape) => Wrap(Native.orl_reshape(Handle, shape, shape.Length));
    /// <summary>A broadcast view with larger sizes (-1 keeps a size).</summary>
    public Tensor expand(params long[] shape) => Wrap(Native.orl_expand(Handle, shape, shape.Length));
    /// <summary>A view with the dimensions reordered.</summary>
    public Tensor permute(params long[] dims) => Wrap(Native.orl_permute(Handle, dims, dims.Length));
    /// <summary>A view with two dimensions swapped.</summary>
    public Tensor transpose(long dim0, long dim1) => Wrap(Native.orl_transpose(Handle, dim0, dim1));
    /// <summary>The transpose of a matrix.</summary>
    public Tensor t() => transpose(0, 1);
    /// <summary>A view of <paramref name="length"/> entries from <paramref name="start"/> along <paramref name="dim"/>.</summary>
    public Tensor narrow(long dim, long start, long length) => Wrap(Native.orl_narrow(Handle, dim, start, length));
    /// <summary>A view of [start, end) with a step along <paramref name="dim"/>, Python slice style.</summary>
    public Tensor slice(long dim, long start, long end, long step = 1) => Wrap(Native.orl_slice(Handle, dim, start, end, step));
    /// <summary>The entry <paramref name="index"/> along <paramref name="dim"/>, removing that dimension.</summary>
    public Tensor select(long dim, long index) => Wrap(Native.orl_select(Handle, dim, index));
    /// <summary>A view with a size-1 dimension inserted at <paramref name="dim"/>.</summary>
    public Tensor unsqueeze(long dim) => Wrap(Native.orl_unsqueeze(Handle, dim));
    /// <summary>A view without size-1 dimensions (only <paramref name="dim"/> when given).</summary>
    public Tensor squeeze(long? dim = null) => Wrap(Native.orl_squeeze(Handle, dim.HasValue ? 1 : 0, dim ?? 0));
    /// <summary>Dimensions start..end merged into one.</summary>
    public Tensor flatten(long start = 0, long end = -1) => Wrap(Native.orl_flatten(Handle, start, end));
    /// <summary>The upper triangle (entries j - i &gt;= diagonal), zeros elsewhere.</summary>
    public Tensor triu(long diagonal = 0) => Wrap(Native.orl_triangle(Handle, diagonal, 1));
    /// <summary>The lower triangle (entries j - i &lt;= diagonal), zeros elsewhere.</summary>
    public Tensor tril(long diagonal = 0) => Wrap(Native.orl_triangle(Handle, diagonal, 0));
    /// <summary>The tensor tiled <paramref name="repeats"/> times along each dimension.</summary>
    public Tensor repeat(params long[] repeats) => Wrap(Native.orl_repeat(Handle, repeats, repeats.Length));
    /// <summary>A copy reversed along <paramref name="dims"/>.</summary>
    public Tensor flip(params long[] dims) => Wrap(Native.orl_flip(Handle, dims, dims.Length));
}
