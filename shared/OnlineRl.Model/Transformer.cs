using TorchSharp.Modules;
using static OnlineRl.Model.ParameterFactory;

namespace OnlineRl.Model;

// A decoder-only transformer of the Llama / Qwen2 family, the whole model in this file (nanoGPT style).
// Module and parameter names follow Hugging Face's (model.layers.0.self_attn.q_proj.weight, ...) so
// that a checkpoint directory loads as is. Shapes: B batch, T new tokens, S all keys (cache + new),
// H query heads, K key/value heads, D head width, C hidden width.

/// <summary>
/// A module whose parts are registered explicitly, under Hugging Face's names. TorchSharp would otherwise also
/// register every module, parameter and tensor field by reflection under its C# name (a second copy in the
/// state dict: "self_attn.&lt;q_proj&gt;k__BackingField.weight").
/// </summary>
public abstract class ExplicitModule : nn.Module
{
    /// <summary>A module named <paramref name="name"/>.</summary>
    protected ExplicitModule(string name) : base(name) { }

    /// <inheritdoc />
    protected override void RegisterComponents() { }
}

/// <summary>The same as <see cref="ExplicitModule"/> for modules with a forward(input) -&gt; output.</summary>
public abstract class ExplicitModule<TInput, TOutput> : nn.Module<TInput, TOutput>
{
    /// <summary>A module named <paramref name="name"/>.</summary>
    protected ExplicitModule(string name) : base(name) { }

    /// <inheritdoc />
    protected override void RegisterComponents() { }
}

internal static class ParameterFactory
{
    /// <summary>
    /// A parameter owning <paramref name="initial"/>'s storage that outlives any open dispose scope (a
    /// model is often built inside one, and TorchSharp would otherwise dispose its parameters with it).
    /// </summary>
    internal static Parameter NewParameter(Tensor initial)
    {
        var parameter = new Parameter(initial);
        parameter.DetachFromDisposeScope();
        return parameter;
    }
}

/// <summary>RMSNorm (Zhang &amp; Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight, computed in float32.</summary>
public sealed class RMSNorm : ExplicitModule<Tensor, Tensor>
{
    private static readonly long[] LastDimension = { -1 };
    private readonly double eps;

    /// <summary>A norm over the last dimension of width <paramref name="size"/>.</summary>
    public RMSNorm(long size, double eps, ScalarType dtype, Device? device) : base(nameof(RMSNorm))
    {
        this.eps = eps;
        register_parameter("weight", weight = NewParameter(torch.ones(new[] { size }, dtype, device)));
    }

    /// <summary>The learned scale.</summary>
    public Parameter weight { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        // In float32 as Hugging Face computes it; float32 inputs skip the two conversions.
        var wide = x.dtype == ScalarType.Float32;
        var h = wide ? x : x.to(ScalarType.Float32);
        var variance = h.mul(h).mean(LastDimension, keepdim: true);
        h = h * variance.Plus(eps).rsqrt();
        return scope.MoveToOuter(weight * (wide ? h : h.to(x.dtype)));
    }
}

/// <summary>
/// Rotary position embeddings (Su et al. 2021, RoFormer) in the "rotate half" layout used by Llama and
/// Qwen2: x' = x cos(p θ) + rotate_half(x) sin(p θ), θ_i = base^(-2i/D).
/// </summary>
public sealed class RotaryEmbedding : ExplicitModule
{
    private readonly Tensor cos;
    private readonly Tensor sin;

    /// <summary>Precomputes cos/sin tables for positions 0 .. maxPositions-1.</summary>
    public RotaryEmbedding(int headDim, double theta, int maxPositions, Device? device) : base(nameof(RotaryEmbedding))
    {
        using var scope = torch.NewDisposeScope();
        var exponents = HeldScalars.Range(0, headDim, device, step: 2).to(ScalarType.Float32).DividedBy(headDim);
        var inverseFrequency = exponents.Times(-Math.Log(theta)).exp();
        var positions = HeldScalars.Range(0, maxPositions, device).to(ScalarType.Float32);
        var angles = positions.unsqueeze(1) * inverseFrequency.unsqueeze(0);
        var table = torch.cat(new[] { angles, angles }, -1);
        cos = table.cos().DetachFromDisposeScope();
        sin = table.sin().DetachFromDisposeScope();
        register_buffer("cos", cos, persistent: false);
        register_buffer("sin", sin, persistent: false);
    }

    /// <summary>cos and sin [B, 1, T, D] of positions <paramref name="positionIds"/> [B, T], computed once per forward.</summary>
    public (Tensor cos, Tensor sin) Tables(Tensor positionIds, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var shape = positionIds.shape;
        var flat = positionIds.reshape(-1);
        var c = cos.index_select(0, flat).view(shape[0], 1, shape[1], -1).to(dtype);
        var s = sin.index_select(0, flat).view(shape[0], 1, shape[1], -1).to(dtype);
        return (scope.MoveToOuter(c), scope.MoveToOuter(s));
    }

    /// <summary>Rotates q [B, H, T, D] and k [B, K, T, D] by the tables from <see cref="Tables"/>.</summary>
    public static (Tensor q, Tensor k) Apply(Tensor q, Tensor k, (Tensor cos, Tensor sin) tables)
    {
        using var scope = torch.NewDisposeScope();
        var (c, s) = tables;
        var rotatedQ = (q * c).Plus(RotateHalf(q) * s);
        var rotatedK = (k * c).Plus(RotateHalf(k) * s);
        return (scope.MoveToOuter(rotatedQ), scope.MoveToOuter(rotatedK));
    }

    private static Tensor RotateHalf(Tensor x)
    {
        var half = x.size(-1) / 2;
        var first = x.narrow(-1, 0, half);
        var second = x.narrow(-1, half, half);
        return torch.cat(new[] { second.neg(), first }, -1);
    }
}

/// <summary>Grouped-query causal self-attention with rotary embeddings and an optional KV cache.</summary>
public sealed class Attention : ExplicitModule
{
    private readonly ModelConfig config;
    private readonly int layerIndex;

    /// <summary>Creates the projections of layer <paramref name="layerIndex"/>.</summary>
    public Attention(ModelConfig config, int layerIndex, ScalarType dtype, Device? device) : base(nameof(Attention))
    {
        this.config = config;
        this.layerIndex = layerIndex;
        var c = config.HiddenSize;
        register_module("q_proj", q_proj = new LoraLinear(c, config.NumHeads * config.HeadDim, config.AttentionBias, dtype, device));
        register_module("k_proj", k_proj = new LoraLinear(c, config.NumKvHeads * config.HeadDim, config.AttentionBias, dtype, device));
        register_module("v_proj", v_proj = new LoraLinear(c, config.NumKvHeads * config.HeadDim, config.AttentionBias, dtype, device));
        register_module("o_proj", o_proj = new LoraLinear(config.NumHeads * config.HeadDim, c, false, dtype, device));
    }

    /// <summary>Query projection.</summary>
    public LoraLinear q_proj { get; }
    /// <summary>Key projection.</summary>
    public LoraLinear k_proj { get; }
    /// <summary>Value projection.</summary>
    public LoraLinear v_proj { get; }
    /// <summary>Output projection.</summary>
    public LoraLinear o_proj { get; }

    /// <summary>
    /// x [B, T, C] -&gt; [B, T, C]. <paramref name="maskBias"/> [B, 1, T, S] is 0 where a query may attend and
    /// a large negative number elsewhere; without it, every query sees every key (<paramref name="causal"/>:
    /// only those at or before its own position). With a cache, the new keys/values are appended to it first.
    /// </summary>
    public Tensor Forward(Tensor x, (Tensor cos, Tensor sin) rotary, Tensor? maskBias, bool causal, IKvCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.size(0), t = x.size(1);
        int h = config.NumHeads, kv = config.NumKvHeads, d = config.HeadDim;
        var q = q_proj.forward(x).view(b, t, h, d).transpose(1, 2);
        var k = k_proj.forward(x).view(b, t, kv, d).transpose(1, 2);
        var v = v_proj.forward(x).view(b, t, kv, d).transpose(1, 2);
        (q, k) = RotaryEmbedding.Apply(q, k, rotary);
        if (cache is not null) (k, v) = cache.Append(layerIndex, k, v);
        k = RepeatKv(k, config.GroupSize);
        v = RepeatKv(v, config.GroupSize);
        // softmax(q k^T / sqrt(D) + mask) v in one fused kernel (libtorch accumulates low-precision inputs in float32).
        var output = nn.functional.scaled_dot_product_attention(q, k, v, maskBias, is_casual: causal).transpose(1, 2).reshape(b, t, h * d);
        return scope.MoveToOuter(o_proj.forward(output));
    }

    /// <summary>[B, K, S, D] -&gt; [B, K * groups, S, D], each key/value head shared by `groups` query heads.</summary>
    private static Tensor RepeatKv(Tensor x, int groups)
    {
        if (groups == 1) return x;
        var s = x.shape;
        return x.unsqueeze(2).expand(s[0], s[1], groups, s[2], s[3]).reshape(s[0], s[1] * groups, s[2], s[3]);
    }
}

/// <summary>SwiGLU feed-forward (Shazeer 2020): down(silu(gate(x)) * up(x)).</summary>
public sealed class Mlp : ExplicitModule<Tensor, Tensor>
{
    /// <summary>Creates the three projections.</summary>
    public Mlp(ModelConfig config, ScalarType dtype, Device? device) : base(nameof(Mlp))
    {
        register_module("gate_proj", gate_proj = new LoraLinear(config.HiddenSize, config.IntermediateSize, false, dtype, device));
        register_module("up_proj", up_proj = new LoraLinear(config.HiddenSize, config.IntermediateSize, false, dtype, device));
        register_module("down_proj", down_proj = new LoraLinear(config.IntermediateSize, config.HiddenSize, false, dtype, device));
    }

    /// <summary>Gate projection.</summary>
    public LoraLinear gate_proj { get; }
    /// <summary>Up projection.</summary>
    public LoraLinear up_proj { get; }
    /// <summary>Down projection.</summary>
    public LoraLinear down_proj { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return scope.MoveToOuter(down_proj.forward(gate_proj.forward(x).silu() * up_proj.forward(x)));
    }
}

/// <summary>One pre-norm block: x + attn(norm(x)), then + mlp(norm(.)).</summary>
public sealed class DecoderLayer : ExplicitModule
{
    /// <summary>Creates block number <paramref name="index"/>.</summary>
    public DecoderLayer(ModelConfig config, int index, ScalarType dtype, Device? device) : base(nameof(DecoderLayer))
    {
        register_module("self_attn", self_attn = new Attention(config, index, dtype, device));
        register_module("mlp", mlp = new Mlp(config, dtype, device));
        register_module("input_layernorm", input_layernorm = new RMSNorm(config.HiddenSize, config.RmsNormEps, dtype, device));
        register_module("post_attention_layernorm", post_attention_layernorm = new RMSNorm(config.HiddenSize, config.RmsNormEps, dtype, device));
    }

    /// <summary>Attention.</summary>
    public Attention self_attn { get; }
    /// <summary>Feed-forward.</summary>
    public Mlp mlp { get; }
    /// <summary>Norm before attention.</summary>
    public RMSNorm input_layernorm { get; }
    /// <summary>Norm before the MLP.</summary>
    public RMSNorm post_attention_layernorm { get; }

    /// <summary>x [B, T, C] -&gt; [B, T, C].</summary>
    public Tensor Forward(Tensor x, (Tensor cos, Tensor sin) rotary, Tensor? maskBias, bool causal, IKvCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var h = x.Plus(self_attn.Forward(input_layernorm.forward(x), rotary, maskBias, causal, cache));
        return scope.MoveToOuter(h.Plus(mlp.forward(post_attention_layernorm.forward(h))));
    }
}

/// <summary>The embedding, the blocks and the final norm (Hugging Face's "model." prefix).</summary>
public sealed class DecoderStack : ExplicitModule
{
    private readonly ModuleList<DecoderLayer> blocks = new();

    /// <summary>Creates every part with freshly drawn weights.</summary>
    public DecoderStack(ModelConfig config, ScalarType dtype, Device? device) : base(nameof(DecoderStack))
    {
        register_module("embed_tokens", embed_tokens = nn.Embedding(config.VocabSize, config.HiddenSize, device: device, dtype: dtype));
        for (var i = 0; i < config.NumLayers; i++) blocks.Add(new DecoderLayer(config, i, dtype, device));
        register_module("layers", blocks);
        register_module("norm", norm = new RMSNorm(config.HiddenSize, config.RmsNormEps, dtype, device));
        register_module("rotary_emb", rotary = new RotaryEmbedding(config.HeadDim, config.RopeTheta, config.MaxPositionEmbeddings, device));
    }

    /// <summary>Token embedding.</summary>
    public Embedding embed_tokens { get; }
    /// <summary>Final norm.</summary>
    public RMSNorm norm { get; }
    /// <summary>The blocks in order.</summary>
    public ModuleList<DecoderLayer> layers => blocks;

    private readonly RotaryEmbedding rotary;

    /// <summary>Token ids [B, T] -&gt; final hidden states [B, T, C]; the mask as in <see cref="Attention.Forward"/>.</summary>
    public Tensor Forward(Tensor inputIds, Tensor positionIds, Tensor? maskBias, bool causal, IKvCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var h = embed_tokens.forward(inputIds);
        var tables = rotary.Tables(positionIds, h.dtype);
        foreach (var block in blocks) h = block.Forward(h, tables, maskBias, causal, cache);
        return scope.MoveToOuter(norm.forward(h));
    }
}

/// <summary>
/// The policy: a decoder stack with an LM head (tied to the embedding or not) and optional scalar heads
/// (value head for the PPO critic, reward head for reward models).
/// </summary>
public sealed class TransformerModel : ExplicitModule<Tensor, Tensor>
{
    /// <summary>A model with freshly drawn weights (N(0, 0.02) linears and embeddings, unit norms, zero biases).</summary>
    public TransformerModel(ModelConfig config, ScalarType? dtype = null, Device? device = null) : base(nameof(TransformerModel))
    {
        Config = config.Validate();
        var type = dtype ?? config.WeightType;
        register_module("model", model = new DecoderStack(config, type, device));
        if (!config.TieWordEmbeddings)
            register_module("lm_head", lm_head = new LoraLinear(config.HiddenSize, config.VocabSize, false, type, device));
        if (config.Heads.HasFlag(ModelHeads.Value))
            register_module("value_head", value_head = new LoraLinear(config.HiddenSize, 1, true, type, device));
        if (config.Heads.HasFlag(ModelHeads.Reward))
            register_module("score", score = new LoraLinear(config.HiddenSize, 1, false, type, device));
        InitialiseWeights();
    }

    /// <summary>The architecture.</summary>
    public ModelConfig Config { get; }

    /// <summary>Embedding, blocks, final norm.</summary>
    public DecoderStack model { get; }
    /// <summary>LM head, or null when tied to the embedding.</summary>
    public LoraLinear? lm_head { get; }
    /// <summary>Per-token scalar value head (PPO critic), if configured.</summary>
    public LoraLinear? value_head { get; }
    /// <summary>Scalar reward head, if configured.</summary>
    public LoraLinear? score { get; }

    /// <summary>Where the weights live.</summary>
    public Device Device => model.embed_tokens.weight!.device;

    /// <summary>Number of scalar parameters.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Element type of the weights.</summary>
    public ScalarType DType => model.embed_tokens.weight!.dtype;

    private void InitialiseWeights()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("layernorm.weight", StringComparison.Ordinal) || name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(HeldScalars.One);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else p.normal_(0, 0.02);
        }
    }

    /// <summary>
    /// Final hidden states [B, T, C] of <paramref name="inputIds"/> [B, T]. <paramref name="attentionMask"/>
    /// [B, S] (1 = real token, 0 = padding) covers the cached keys plus the new tokens; positions default to
    /// the count of real tokens before each one, so left-padded prompts start at position 0. For packed
    /// sequences (no cache), <paramref name="segmentIds"/> [B, T] marks which example each token belongs
    /// to (attention stays inside an example) and <paramref name="segmentPositions"/> [B, T] each token's
    /// position within its example.
    /// </summary>
    public Tensor Hidden(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, Tensor? segmentIds = null, Tensor? segmentPositions = null)
    {
        using var scope = torch.NewDisposeScope();
        long b = inputIds.size(0), t = inputIds.size(1);
        var past = cache?.Length ?? 0;
        var s = past + t;
        var device = Device;
        if (segmentIds is not null && cache is not null) throw new ArgumentException("packed segments cannot be combined with a KV cache", nameof(segmentIds));
        Tensor positions;
        Tensor? maskBias = null;
        var causal = false;
        if (attentionMask is null && segmentIds is null && (t == 1 || past == 0))
        {
            // No padding: positions count from the cache's length, and the mask is implied. One new token may
            // see every cached key; a first chunk is plainly causal. No mask tensors to build in the decode loop.
            positions = HeldScalars.Range(past, s, device).unsqueeze(0).expand(b, t);
            causal = t > 1;
        }
        else
        {
            var mask = attentionMask ?? torch.ones(new[] { b, s }, ScalarType.Int64, device);
            if (mask.size(1) != s)
                throw new ArgumentException($"attention mask covers {mask.size(1)} positions but cache ({past}) + new tokens ({t}) = {s}", nameof(attentionMask));
            var realBefore = mask.to(ScalarType.Int64).cumsum(1);
            // Query i (absolute position past + i) may see key j when j <= past + i and key j is not padding.
            var queryIndex = HeldScalars.Range(past, s, device).view(t, 1);
            var keyIndex = HeldScalars.Range(0, s, device).view(1, s);
            var blocked = keyIndex.gt(queryIndex).view(1, 1, t, s).logical_or(mask.eq(HeldScalars.Zero).view(b, 1, 1, s));
            if (segmentIds is null)
            {
                positions = realBefore.Minus(1).clamp_min(HeldScalars.Zero).narrow(1, past, t);
            }
            else
            {
                if (segmentPositions is null) throw new ArgumentException("packed segments need their positions", nameof(segmentPositions));
                blocked = blocked.logical_or(segmentIds.view(b, 1, t, 1).ne(segmentIds.view(b, 1, 1, t)));
                positions = segmentPositions;
            }
            // The Scalar is held until the call returns: a temporary one passes only its native handle, so the
            // finalizer could free it during the call (seen as a "toFloat" check failure mid-run).
            using var blockedValue = float.MinValue.ToScalar();
            maskBias = torch.zeros(new[] { b, 1, t, s }, DType, device).masked_fill(blocked, blockedValue);
        }
        var hidden = model.Forward(inputIds, positions, maskBias, causal, cache);
        cache?.Advance(t);
        return scope.MoveToOuter(hidden);
    }

    /// <summary>Next-token logits [..., V] from hidden states [..., C].</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head is null ? torch.nn.functional.linear(hidden, model.embed_tokens.weight!) : lm_head.forward(hidden);

    /// <summary>Per-token values [..., ] from hidden states [..., C]; needs the value head.</summary>
    public Tensor Values(Tensor hidden)
    {
        if (value_head is null) throw new InvalidOperationException("this model has no value head (config onlinerl_heads lacks Value)");
        using var scope = torch.NewDisposeScope();
        return scope.MoveToOuter(value_head.forward(hidden).squeeze(-1));
    }

    /// <summary>Per-token rewards [..., ] from hidden states [..., C]; needs the reward head.</summary>
    public Tensor Rewards(Tensor hidden)
    {
        if (score is null) throw new InvalidOperationException("this model has no reward head (config onlinerl_heads lacks Reward)");
        using var scope = torch.NewDisposeScope();
        return scope.MoveToOuter(score.forward(hidden).squeeze(-1));
    }

    /// <summary>Logits [B, T, V] of a full sequence without padding.</summary>
    public override Tensor forward(Tensor inputIds)
    {
        using var scope = torch.NewDisposeScope();
        return scope.MoveToOuter(Logits(Hidden(inputIds)));
    }
}

/// <summary>Where attention layers keep the keys and values of the tokens seen so far.</summary>
public interface IKvCache
{
    /// <summary>
    /// Stores the new keys/values k, v [B, K, T, D] of layer <paramref name="layer"/> and returns every key/value each
    /// query may attend to, [B, K, S, D] (cached ones first).
    /// </summary>
    (Tensor k, Tensor v) Append(int layer, Tensor k, Tensor v);
}

/// <summary>
/// Keys and values of every layer for the tokens seen so far, preallocated for <c>capacity</c>
/// positions so that each decoding step writes in place instead of concatenating.
/// </summary>
public sealed class KvCache : IKvCache, IDisposable
{
    private readonly Tensor[] keys;
    private readonly Tensor[] values;

    /// <summary>An empty cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> tokens.</summary>
    public KvCache(ModelConfig config, long batch, long capacity, ScalarType dtype, Device device)
    {
        Capacity = capacity;
        (keys, values) = Allocate(config, batch, capacity, dtype, device);
    }

    /// <summary>Zeroed keys and values [batch, K, capacity, D] for every layer, owned by the caller (outside any dispose scope).</summary>
    internal static (Tensor[] keys, Tensor[] values) Allocate(ModelConfig config, long batch, long capacity, ScalarType dtype, Device device)
    {
        var keys = new Tensor[config.NumLayers];
        var values = new Tensor[config.NumLayers];
        var shape = new[] { batch, config.NumKvHeads, capacity, config.HeadDim };
        for (var i = 0; i < config.NumLayers; i++)
        {
            keys[i] = torch.zeros(shape, dtype, device).DetachFromDisposeScope();
            values[i] = torch.zeros(shape, dtype, device).DetachFromDisposeScope();
        }
        return (keys, values);
    }

    /// <summary>Positions filled so far.</summary>
    public long Length { get; private set; }

    /// <summary>Positions available in total.</summary>
    public long Capacity { get; }

    /// <summary>Writes k, v [B, K, T, D] after the filled positions of layer <paramref name="layer"/>; returns all keys/values so far.</summary>
    (Tensor k, Tensor v) IKvCache.Append(int layer, Tensor k, Tensor v)
    {
        var t = k.size(2);
        if (Length + t > Capacity)
            throw new InvalidOperationException($"KV cache full: {Length} + {t} positions exceed its capacity of {Capacity}");
        using (torch.no_grad())
        {
            keys[layer].narrow(2, Length, t).copy_(k);
            values[layer].narrow(2, Length, t).copy_(v);
        }
        return (keys[layer].narrow(2, 0, Length + t), values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>The filled keys and values [B, K, Length, D] of layer <paramref name="layer"/> (views).</summary>
    internal (Tensor k, Tensor v) Filled(int layer) => (keys[layer].narrow(2, 0, Length), values[layer].narrow(2, 0, Length));

    /// <summary>Marks <paramref name="count"/> more positions as filled (after every layer has appended).</summary>
    internal void Advance(long count) => Length += count;

    /// <summary>Keeps rows <paramref name="rows"/> of the batch, in that order (e.g. each prompt repeated G times).</summary>
    public void SelectRows(Tensor rows)
    {
        for (var i = 0; i < keys.Length; i++)
        {
            var k = keys[i].index_select(0, rows).DetachFromDisposeScope();
            var v = values[i].index_select(0, rows).DetachFromDisposeScope();
            keys[i].Dispose();
            values[i].Dispose();
            keys[i] = k;
            values[i] = v;
        }
    }

    /// <summary>Frees the cache.</summary>
    public void Dispose()
    {
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
    }
}
