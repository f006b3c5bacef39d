#!/usr/bin/python3
"""Golden values for the TorchSharp tests (GoldenOpTests.cs, OptimGoldenTests.cs): every tensor op the
project calls (shared/, services/), made by PyTorch.

Run with Debian's interpreter and its torch (1.13; the project runs TorchSharp over libtorch 2.10, so the C#
side allows for the few kernels that round differently, each named in GoldenOpTests.cs):

    /usr/bin/python3 tests/OnlineRl.TorchSharp.Tests/golden/make_golden.py [OUT_DIR]

It writes OUT_DIR/ops.json (default: the folder of this script). The output is deterministic: running it
again reproduces the checked-in file byte for byte (GoldenOpTests checks this).

ops.json holds
  "cases": one entry per op case, keyed by name. Each has the inputs (dtype, shape, row-major data, whether
      the input requires grad), the outputs, one cotangent per output that requires grad, and the gradient of
      sum_i sum(out_i * cotangent_i) with respect to each input (null where there is none). Inputs and
      cotangents of a case are drawn from a generator seeded by the CRC-32 of the case's name, so adding a
      case leaves the others unchanged. The C# test has one lambda per case name, mirroring the Python lambda
      below, and compares bit for bit except for the cases whose 2.10 kernels it names.
      Each case says where the project makes that call, so a case can go when its last caller does.
  "optim": AdamW steps, clip_grad_norm_, nn.Linear initialisation and state_dict keys.

Floats are written as Python floats (.tolist() of float16/bfloat16/float32/float64 tensors is exact, and
json writes the shortest repr that round-trips), non-finite ones as the strings "nan", "inf", "-inf".
"""
import json
import math
import os
import sys
import zlib

# OpenBLAS picks its kernels by CPU model, and different kernels round differently. Pin one (AVX2 level,
# the same level as ATen's kernels) so that the matmul goldens do not depend on the machine that made them.
# ATen's own CPU kernels are left alone: they use AVX2 on every machine with AVX2.
if "avx2" in open("/proc/cpuinfo").read():
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)

DTYPE_NAMES = {
    torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8",
    torch.bool: "bool",
}

# ---- encoding -------------------------------------------------------------------------------------------


def number(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def enc(t, requires_grad=None):
    t = t.detach()
    out = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data": [number(v) for v in t.reshape(-1).tolist()]}
    if requires_grad is not None:
        out["requires_grad"] = requires_grad
    return out


# ---- input specs: drawn per case from the case's own generator -----------------------------------------


def N(*shape, scale=1.0, shift=0.0, dtype=torch.float32):
    """Normal values, scale * N(0, 1) + shift."""
    return lambda g: (torch.randn(shape, generator=g, dtype=torch.float64) * scale + shift).to(dtype)


def U(*shape, lo=0.0, hi=1.0, dtype=torch.float32):
    """Uniform values in [lo, hi)."""
    return lambda g: (torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo).to(dtype)


def I(lo, hi, *shape, dtype=torch.int64):  # noqa: E743
    """Integers in [lo, hi)."""
    return lambda g: torch.randint(lo, hi, shape, generator=g, dtype=torch.int64).to(dtype)


def B(*shape):
    """A boolean mask."""
    return lambda g: torch.rand(shape, generator=g) < 0.5


def T(values, dtype=torch.float32):
    """Explicit values."""
    return lambda g: torch.tensor(values, dtype=dtype)


CASES = {}


def case(name, fn, *specs, grad=True):
    """Runs fn on the inputs and records inputs, outputs, cotangents and input gradients."""
    assert name not in CASES, name
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    inputs = [spec(g) for spec in specs]
    for x in inputs:
        if grad and x.is_floating_point():
            x.requires_grad_(True)
    result = fn(*inputs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    cotangents = []
    for out in outputs:
        if out.requires_grad:
            cotangents.append(torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype))
        else:
            cotangents.append(None)
    grads = [None] * len(inputs)
    wanting = [i for i, x in enumerate(inputs) if x.requires_grad]
    if wanting and any(c is not None for c in cotangents):
        total = sum((o * c).sum() for o, c in zip(outputs, cotangents) if c is not None)
        computed = torch.autograd.grad(total, [inputs[i] for i in wanting], allow_unused=True)
        for i, gr in zip(wanting, computed):
            grads[i] = gr
    CASES[name] = {
        "inputs": [enc(x, x.requires_grad) for x in inputs],
        "outputs": [enc(o) for o in outputs],
        "cotangents": [None if c is None else enc(c) for c in cotangents],
        "grads": [None if gr is None else enc(gr) for gr in grads],
    }


def seeded(seed, fn):
    """fn() right after torch.manual_seed(seed): the global generator."""
    def run(*args):
        torch.manual_seed(seed)
        return fn(*args)
    return run


NAN, INF = float("nan"), float("inf")

MIN32 = torch.finfo(torch.float32).min  # C#'s float.MinValue: the attention bias of blocked keys


def inplace(fn):
    """fn applied to a clone of the first input (so that gradients flow to the leaf); returns the clone."""
    def run(x, *rest):
        y = x.clone()
        fn(y, *rest)
        return y
    return run


# ---- element-wise, one input ----------------------------------------------------------------------------

case("neg", lambda x: x.neg(), N(3, 4))                                  # RotaryEmbedding.RotateHalf
case("neg_operator", lambda x: -x, N(3, 4))                              # Dpo, Grpo, Ppo.Entropy
case("exp", lambda x: x.exp(), N(3, 4))                                  # Kl, Grpo ratio, rotary frequencies
case("rsqrt", lambda x: x.rsqrt(), U(3, 4, lo=0.1, hi=3))                # RMSNorm, Advantages.Whiten
case("square", lambda x: x.square(), N(3, 4))                            # HeldScalars.Squared (x * x): RMSNorm, Kl k2, Ppo value loss
case("sin", lambda x: x.sin(), N(3, 4, scale=2))                         # rotary tables, smoke
case("cos", lambda x: x.cos(), N(3, 4, scale=2))                         # rotary tables
case("sin_cos_large", lambda x: (x.sin(), x.cos()), U(4, 8, lo=0, hi=4000))  # rotary tables of far positions
case("silu", lambda x: F.silu(x), N(3, 4, scale=2))                      # Mlp (x.silu())
case("tanh", lambda x: x.tanh(), N(3, 4, scale=2))                       # smoke MLP
case("relu", lambda x: x.relu(), N(3, 4))                                # bench MLP
case("logsigmoid", lambda x: F.logsigmoid(x), N(3, 4, scale=10))        # Dpo, RewardModelLoss

# ---- element-wise, two inputs ---------------------------------------------------------------------------

case("add", lambda a, b: a + b, N(3, 4), N(3, 4))                        # residuals, Ppo.TotalLoss
case("sub", lambda a, b: a - b, N(3, 4), N(3, 4))                        # log-ratios
case("mul", lambda a, b: a * b, N(3, 4), N(3, 4))                        # masks, surrogate
case("div", lambda a, b: a / b, N(3, 4), U(3, 4, lo=0.5, hi=2))          # Masked.Mean
case("maximum", lambda a, b: a.maximum(b), N(3, 4), N(3, 4))             # Ppo.ValueLoss
case("minimum", lambda a, b: a.minimum(b), N(3, 4), N(3, 4))             # Grpo surrogate
case("operators_mix", lambda a, b, c: (a + b) * c - a / c, N(3, 4), N(3, 4), U(3, 4, lo=0.5, hi=2))
case("mul_broadcast_row", lambda w, h: w * h, N(4), N(2, 3, 4))          # RMSNorm weight * h
case("mul_broadcast_outer", lambda a, b: a * b, N(5, 1), N(1, 3))        # rotary positions x frequencies
case("mul_broadcast_heads", lambda q, c: q * c, N(2, 3, 4, 6), N(2, 1, 4, 6))  # q * cos [B, 1, T, D]
case("sub_broadcast_keepdim", lambda r, m: r - m, N(3, 4), N(3, 1))      # Advantages.Grpo r - mean
case("div_broadcast_keepdim", lambda a, s: a / s, N(3, 4), U(3, 1, lo=0.5, hi=2))  # Advantages / (std + eps)
case("mul_0dim", lambda x, s: x * s, N(3, 4), U(lo=0.5, hi=2))           # Masked.Var variance * n

# comparisons and logic
case("gt", lambda a, b: a.gt(b), N(3, 4), N(3, 4))                       # Dpo reward accuracy, Ppo clip fraction
case("gt_broadcast_int64", lambda k, q: k.gt(q), I(0, 6, 1, 6), I(0, 6, 4, 1))  # causal mask keyIndex.gt(queryIndex)
case("lt_broadcast", lambda x, kth: x.lt(kth), N(3, 5), N(3, 1))         # Sampler top-k
case("ne_broadcast_int64", lambda a, b: a.ne(b), I(0, 3, 2, 1, 4, 1), I(0, 3, 2, 1, 1, 4))  # packed segments
case("eq_long_int64", lambda x: x.eq(0), I(0, 2, 2, 6))                  # attention mask == 0
case("gt_scalar", lambda x: x.gt(0.0), N(3, 4))                          # margins, non-empty rows, top-p
case("lt_scalar", lambda x: x.lt(0.8), U(3, 4, lo=0.5, hi=1.5))          # Grpo ratio < 1 - clip
case("logical_and", lambda a, b: a.logical_and(b), B(3, 4), B(3, 4))     # Grpo clip statistics
case("logical_or_broadcast", lambda a, b: a.logical_or(b), B(1, 1, 3, 5), B(2, 1, 1, 5))  # blocked keys

# with a scalar (C#: double, or long for integer tensors)
case("add_scalar", lambda x: x + 1e-6, U(3, 4, lo=0, hi=2))              # variance + eps
case("sub_scalar", lambda x: x - 5.0, N(3, 4))                           # Dpo Ipo (h - 1 / 2 tau)
case("sub_int", lambda x: x - 1, N(3, 4))                                # Kl k3 r - 1, Masked.Var n - 1
case("sub_long_int64", lambda x: x - 1, I(0, 5, 2, 6))                   # positions: real tokens before - 1
case("mul_scalar", lambda x: x * -9.2, U(3, 4))                          # rotary exponents * -log(theta)
case("rmul_scalar", lambda x: 0.1 * x, N(3, 4))                          # beta * logits, 0.5 * square
case("div_scalar", lambda x: x / 0.7, N(3, 4))                           # logits / temperature

# ---- in place -------------------------------------------------------------------------------------------

case("add__tensor", inplace(lambda y, b: y.add_(b)), N(3, 4), N(3, 4))   # LoraLinear.MergeAdapter, bench
case("zero_", lambda x: x.zero_(), N(3, 4), grad=False)                  # LoRA B, biases, moments (under no_grad)
case("fill_", inplace(lambda y: y.fill_(1)), N(3, 4))                    # norm weights
case("copy__narrow", inplace(lambda y, s: y.narrow(2, 1, 2).copy_(s)), N(1, 2, 5, 3), N(1, 2, 2, 3))  # KvCache.Append
case("index_put__rows_positions", inplace(lambda y, v: y.__setitem__((torch.tensor([2, 0]), slice(None), torch.tensor([3, 1])), v)),
     N(4, 2, 5, 3), N(2, 2, 3))                                          # SlotKvCache.Append: cache[rows, :, positions] = k
case("copy__convert", inplace(lambda y, s: y.copy_(s)), N(2, 3), N(2, 3, dtype=torch.bfloat16))  # weights into a model
case("normal_", seeded(6, lambda: torch.empty(4, 8).normal_(0.0, 0.02)))  # TransformerModel init
case("normal__small", seeded(7, lambda: torch.empty(2, 5).normal_(0.0, 0.02)))

# ---- selection ------------------------------------------------------------------------------------------

case("clamp", lambda x: x.clamp(0.8, 1.2), U(3, 4, lo=0.5, hi=1.5))     # Grpo clip(ratio)
case("clamp_min", lambda x: x.clamp(min=1), U(3, 4, lo=0, hi=3))         # Masked.Mean count, Dpo lengths
case("clamp_max", lambda x: x.clamp(max=2.0), U(3, 4, lo=0, hi=4))       # Grpo importance weight
case("clamp_min_int64", lambda x: x.clamp(min=0), I(-1, 5, 2, 6))        # TransformerModel positions
case("clamp_tensor", lambda x, lo, hi: x.clamp(lo, hi), N(3, 4), U(3, 4, lo=-1, hi=0), U(3, 4, lo=0, hi=1))  # Ppo value clip
case("masked_fill_min_float", lambda x, m: x.masked_fill(m, MIN32), N(2, 1, 3, 5), B(2, 1, 3, 5))  # attention bias
case("masked_fill_neg_inf", lambda x, m: x.masked_fill(m, -INF), N(3, 5), B(3, 5))  # Sampler top-k/top-p

# ---- reductions -----------------------------------------------------------------------------------------

case("sum_all", lambda x: x.sum(), N(2, 3, 4))                           # Masked.Sum, losses
case("sum_dim", lambda x: x.sum(1), N(3, 4))                             # Masked per row, Dpo lengths
case("sum_last", lambda x: x.sum(-1), N(2, 3, 5))                        # entropy
case("mean_all", lambda x: x.mean(), N(2, 3, 4))                         # losses, statistics
case("mean_dim_keepdim", lambda x: x.mean((1,), keepdim=True), N(3, 4))  # Advantages.Grpo
case("mean_last_keepdim", lambda x: x.mean((-1,), keepdim=True), N(2, 3, 8))  # RMSNorm
case("std_dim_keepdim", lambda x: x.std(1, unbiased=True, keepdim=True), N(3, 4))  # Advantages.Grpo
case("max_all", lambda x: x.max(), N(3, 4))                              # Grpo importance weight max
case("argmax_last", lambda x: x.argmax(-1), N(3, 7))                     # Sampler greedy
case("argmax_dim_keepdim", lambda x: x.argmax(1, keepdim=True), N(3, 5))  # Ppo last completion token
case("softmax_last", lambda x: x.softmax(-1), N(3, 7))                   # Sampler
case("softmax_masked", lambda x: x.softmax(-1), T([[0.5, -INF, 1.5, -INF], [-INF, 2.0, -INF, -INF]]))  # after top-k
case("log_softmax_last", lambda x: x.log_softmax(-1), N(2, 3, 7))        # log-probs
case("log_softmax_large", lambda x: x.log_softmax(-1), N(3, 6, scale=100))
case("cumsum_last", lambda x: x.cumsum(-1), U(3, 6))                     # Sampler top-p
case("cumsum_int64", lambda x: x.cumsum(1), I(0, 2, 2, 6))               # TransformerModel positions
case("topk_last", lambda x: x.topk(3, -1), N(3, 7))                      # Sampler top-k
case("sort_descending", lambda x: x.sort(-1, descending=True), N(3, 7))  # Sampler top-p

# ---- linear algebra -------------------------------------------------------------------------------------

case("matmul_mat_mat", lambda a, b: a.matmul(b), N(6, 2), N(2, 5))        # LoRA merge B A, bench
case("linear_bias", lambda x, w, b: F.linear(x, w, b), N(3, 4), N(5, 4), N(5))  # nn.Linear (bench, smoke)
case("linear_nobias_3d", lambda x, w: F.linear(x, w), N(2, 3, 8), N(6, 8))  # projections, tied LM head
case("linear_bias_3d", lambda x, w, b: F.linear(x, w, b), N(2, 3, 8), N(1, 8), N(1))  # value head


def attention(q, k, v, blocked):
    """softmax(q k^T / sqrt(D) + bias) v, the definition (torch 1.13 has no scaled_dot_product_attention),
    with the model's float bias: 0 where a query may attend, float32's minimum elsewhere."""
    bias = torch.zeros(blocked.shape).masked_fill(blocked, MIN32)
    scores = q.matmul(k.transpose(-2, -1)) / math.sqrt(q.shape[-1]) + bias
    return scores.softmax(-1).matmul(v)


# Prefill of 3 tokens after 2 cached positions, causal, the second row with two padding keys.
case("scaled_dot_product_attention", attention, N(2, 2, 3, 4), N(2, 2, 5, 4), N(2, 2, 5, 4),
     T([[[[False, False, False, True, True], [False, False, False, False, True], [False, False, False, False, False]]],
        [[[True, True, False, True, True], [True, True, False, False, True], [True, True, False, False, False]]]],
       dtype=torch.bool))
# Left padding (the sampler's prefill): the first query sees only padding keys, every score is float32's
# minimum and the weights are uniform. Outputs only: that row's gradient is meaningless (no loss reaches it).
case("scaled_dot_product_attention_padding_row", attention, N(1, 2, 3, 4), N(1, 2, 3, 4), N(1, 2, 3, 4),
     T([[[[True, True, True], [True, False, True], [True, False, False]]]], dtype=torch.bool), grad=False)
# One decoding step with a cache of 5 positions, the second row with padding.
case("scaled_dot_product_attention_decode", attention, N(2, 4, 1, 8), N(2, 4, 6, 8), N(2, 4, 6, 8),
     T([[[[False] * 6]], [[[True, True, False, False, False, False]]]], dtype=torch.bool))

# ---- indexing -------------------------------------------------------------------------------------------

case("embedding", lambda i, w: F.embedding(i, w), I(0, 6, 2, 3), N(6, 4))  # nn.Embedding (embed_tokens)
case("index_select", lambda x, i: x.index_select(0, i), N(4, 3), T([3, 0, 3, 1], dtype=torch.int64))  # rows, caches, tables
case("index_select_4d", lambda x, i: x.index_select(0, i), N(2, 2, 3, 2), T([0, 0, 1, 1], dtype=torch.int64))  # KvCache.SelectRows
case("gather_last", lambda x, i: x.gather(-1, i), N(2, 3, 5), I(0, 5, 2, 3, 1))  # token log-probs
case("gather_dim1", lambda x, i: x.gather(1, i), N(3, 6), T([[5], [0], [2]], dtype=torch.int64))  # RewardModel last token
case("scatter_bool", lambda d, order: d.scatter(-1, order, d), B(2, 5), T([[3, 0, 4, 1, 2], [1, 2, 0, 4, 3]], dtype=torch.int64))  # top-p
case("scatter_add_dim1", lambda x, i, s: x.scatter_add(1, i, s), N(3, 4), T([[3], [0], [2]], dtype=torch.int64), N(3, 1))  # Ppo rewards
case("select", lambda x: x.select(1, 2), N(2, 3, 4))                     # last prompt position
case("narrow", lambda x: x.narrow(-1, 2, 2), N(2, 3, 4))                 # rotate half, caches, shifts
case("multinomial", seeded(11, lambda p: p.multinomial(1)), U(4, 9, lo=0.1, hi=1), grad=False)  # Sampler, global
case("multinomial_generator", lambda p: p.multinomial(1, False, generator=torch.Generator().manual_seed(7)),
     U(4, 9, lo=0.1, hi=1), grad=False)                      # Sampler with its own generator
case("multinomial_generator_masked", lambda p: p.multinomial(1, False, generator=torch.Generator().manual_seed(8)),
     T([[0.0, 0.5, 0.0, 0.5], [0.25, 0.0, 0.75, 0.0], [0.0, 0.0, 1.0, 0.0]]), grad=False)

# ---- shape ----------------------------------------------------------------------------------------------

case("view", lambda x: x.view(2, 3, 2, 2), N(2, 3, 4))                   # heads
case("view_infer", lambda x: x.view(2, 1, 3, -1), N(6, 4))               # rotary tables
case("reshape", lambda x: x.reshape(-1), N(3, 4))
case("reshape_transposed", lambda x: x.transpose(1, 2).reshape(2, 3, 8), N(2, 4, 3, 2))  # attention output
case("repeat_kv", lambda x: x.unsqueeze(2).expand(2, 2, 3, 4, 5).reshape(2, 6, 4, 5), N(2, 2, 4, 5))  # Attention.RepeatKv
case("transpose", lambda x: x.transpose(1, 2), N(2, 3, 4, 2))
case("unsqueeze", lambda x: x.unsqueeze(1), N(3, 4))
case("unsqueeze_last", lambda x: x.unsqueeze(-1), N(3, 4))
case("squeeze_last", lambda x: x.squeeze(-1), N(2, 3, 1))
case("cat_last", lambda a, b: torch.cat([a, b], -1), N(2, 3), N(2, 3))   # rotary table, rotate half
case("cat_dim1_int64", lambda a, b: torch.cat([a, b], 1), I(0, 2, 3, 4), I(1, 2, 3, 1))  # growing attention mask
case("cat_int64", lambda a, b: torch.cat([a, b]), I(0, 9, 3), I(0, 9, 2))  # DPO rows
case("stack_0dim", lambda a, b, c: torch.stack([a, b, c]), N(), N(), N())  # loss statistics
case("contiguous", lambda x: x.t().contiguous(), N(3, 4))                 # safetensors, weight store
case("detach", lambda x: x.detach(), N(3, 4))
case("cpu", lambda x: x.cpu(), N(3, 4))
case("alias", lambda x: torch.ops.aten.alias(x), N(3, 4))                 # Shapes.PerToken
case("bytes_float32", lambda x: x.clone(), N(3, 4), grad=False)           # safetensors, weight store (raw bytes)
case("bytes_bfloat16", lambda x: x.clone(), N(3, 4, dtype=torch.bfloat16), grad=False)

# ---- creation -------------------------------------------------------------------------------------------

case("tensor_int64", lambda: torch.tensor([[1, -2, 3], [4, 5, -6]], dtype=torch.int64))  # ids, masks, rows
case("tensor_float32", lambda: torch.tensor([[1.5, -2.25], [0.1, 3.0]], dtype=torch.float32))  # rewards, log-probs
case("tensor_float64_as_float32", lambda: torch.tensor([0.1, 1.0 / 3.0, -2.5e-3, 1e-40], dtype=torch.float64).to(torch.float32))  # Gae
case("zeros", lambda: torch.zeros(2, 3))
case("ones_int64", lambda: torch.ones(2, 3, dtype=torch.int64))
case("ones_0dim", lambda: torch.ones(()))                                 # Grpo statistics
case("zeros_like", lambda x: torch.zeros_like(x), N(2, 3), grad=False)
case("empty_shape", lambda: torch.tensor(list(torch.empty(2, 3, 4, dtype=torch.bfloat16).shape)))
case("arange_range_int64", lambda: torch.arange(2, 7, 1, dtype=torch.int64))  # query/key positions
case("arange_end_int64", lambda: torch.arange(4, dtype=torch.int64))     # Sampler rows of a prompt
case("arange_step2_int64", lambda: torch.arange(0, 8, 2, dtype=torch.int64))  # rotary exponents
case("arange_float32", lambda: torch.arange(1, 6, 1, dtype=torch.float32))  # Ppo positions
case("linspace", lambda: torch.linspace(-1.0, 1.0, 7))                   # smoke
case("rand", seeded(42, lambda: torch.rand(3, 4)))           # benches
case("randn", seeded(44, lambda: torch.randn(3, 4)))
case("randint", seeded(47, lambda: torch.randint(0, 10, (3, 4))))
case("randperm_generator", lambda: torch.randperm(12, generator=torch.Generator().manual_seed(5)))  # Learner
case("randperm_generator_large", lambda: torch.randperm(40, generator=torch.Generator().manual_seed(9)))

# ---- conversion -----------------------------------------------------------------------------------------

case("int64_to_float32", lambda x: x.to(torch.float32), I(0, 2, 2, 5))   # masks
case("bool_to_float32", lambda x: x.to(torch.float32), B(6))             # comparisons as fractions
case("to_float64", lambda x: x.to(torch.float64), N(3, 4))               # statistics to the host
case("float64_to_float32", lambda x: x.to(torch.float32), N(3, 4, dtype=torch.float64))
case("to_bfloat16", lambda x: x.to(torch.bfloat16), N(3, 4, scale=100))  # weights transfer type, model dtype
case("bfloat16_to_float32", lambda x: x.to(torch.float32), N(3, 4, dtype=torch.bfloat16))  # logits to float32
case("to_float16", lambda x: x.to(torch.float16), N(3, 4, scale=100))
case("float16_to_float32", lambda x: x.to(torch.float32), N(3, 4, dtype=torch.float16))

# ---- neural-network functions ---------------------------------------------------------------------------

case("dropout", seeded(21, lambda x: F.dropout(x, 0.3, training=True)), N(4, 5))  # LoRA dropout
case("dropout_eval", lambda x: F.dropout(x, 0.3, training=False), N(4, 5))
case("cross_entropy", lambda x, t: F.cross_entropy(x, t), N(4, 5), I(0, 5, 4))  # bench MLP
case("cross_entropy_ignore_index", lambda x, t: F.cross_entropy(x, t, ignore_index=-100), N(6, 5),
     T([0, -100, 2, -100, 1, 4], dtype=torch.int64))                     # SFT on packed rows
case("mse_loss", lambda a, b: F.mse_loss(a, b), N(3, 4), N(3, 4))        # smoke


# ---- optimizers, clipping, initialisation (OptimGoldenTests) ---------------------------------------------


def adamw_steps(g, shapes, make_optimizer, steps, skip):
    """Runs `steps` AdamW steps from fixed parameters with fresh gradients; at step `skip` the second
    parameter has none (PyTorch leaves it alone, and its own step count, the bias correction, falls behind)."""
    params = [torch.randn(s, generator=g) for s in shapes]
    initial = [enc(p) for p in params]
    params = [torch.nn.Parameter(p.clone()) for p in params]
    opt = make_optimizer(params)
    record = []
    for step in range(steps):
        grads = [torch.randn(s, generator=g) for s in shapes]
        if step == skip:
            grads[1] = None
        for p, gr in zip(params, grads):
            p.grad = None if gr is None else gr.clone()
        opt.step()
        record.append({"grads": [None if gr is None else enc(gr) for gr in grads], "params": [enc(p) for p in params]})
    return {
        "initial": initial, "steps": record,
        "step_counts": [int(opt.state[p]["step"]) for p in params],
        "exp_avg": [enc(opt.state[p]["exp_avg"]) for p in params],
        "exp_avg_sq": [enc(opt.state[p]["exp_avg_sq"]) for p in params],
    }


def optim_goldens():
    g = torch.Generator().manual_seed(zlib.crc32(b"optim"))
    out = {}
    shapes = [(3, 4), (5,)]

    # torch.optim.AdamW with every hyper-parameter given.
    hyper = {"lr": 0.01, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}
    out["adamw"] = adamw_steps(g, shapes, lambda ps: torch.optim.AdamW(
        ps, lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"], weight_decay=hyper["weight_decay"],
        foreach=False), steps=5, skip=1)
    out["adamw"]["hyper"] = hyper
    # As ScheduledAdamW builds it: the rate and the weight decay given, betas and eps left at their defaults.
    defaults = {"lr": 0.01, "weight_decay": 0.05}
    out["adamw_defaults"] = adamw_steps(g, shapes, lambda ps: torch.optim.AdamW(
        ps, lr=defaults["lr"], weight_decay=defaults["weight_decay"], foreach=False), steps=3, skip=2)
    out["adamw_defaults"]["hyper"] = defaults

    # clip_grad_norm_ (2-norm, what the learners use): the norm before clipping and the clipped gradients.
    # A parameter without a gradient counts for nothing; a NaN gradient makes the norm NaN (the learner
    # then drops the update).
    grads = [torch.randn(s, generator=g) for s in [(3, 4), (5,), (2, 2)]]
    clip = []
    for max_norm, without, nan in [(1.0, None, False), (100.0, None, False), (0.5, 1, False), (1.0, None, True)]:
        ps = [torch.nn.Parameter(torch.zeros(gr.shape)) for gr in grads]
        for i, (p, gr) in enumerate(zip(ps, grads)):
            p.grad = None if i == without else gr.clone()
        if nan:
            ps[2].grad[0, 1] = NAN
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        clip.append({"max_norm": max_norm, "without_grad": without, "nan": nan, "total_norm": number(total.item()),
                     "clipped": [None if p.grad is None else enc(p.grad) for p in ps]})
    out["clip_grad_norm"] = {"grads": [enc(gr) for gr in grads], "cases": clip}

    # torch.nn.Linear under manual_seed (kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)) drawn by
    # uniform_, weight first, then the bias), as LoRA's A (nn.Linear without bias) starts.
    linear = []
    for seed, fan_in, fan_out, bias, dtype in [(7, 5, 3, True, torch.float32), (11, 16, 4, False, torch.float32),
                                               (3, 1, 2, True, torch.float32), (5, 24, 8, False, torch.bfloat16)]:
        torch.manual_seed(seed)
        layer = torch.nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype)
        linear.append({"seed": seed, "in_features": fan_in, "out_features": fan_out, "bias": bias,
                       "dtype": DTYPE_NAMES[dtype], "weight": enc(layer.weight),
                       "bias_values": enc(layer.bias) if bias else None})
    out["linear_init"] = linear

    # state_dict names of the module the C# test builds (TwoLayer): a non-persistent buffer is left out,
    # as RotaryEmbedding's tables must be.
    class TwoLayer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(4, 3)
            self.fc2 = torch.nn.Linear(3, 2, bias=False)
            self.register_buffer("scale", torch.ones(2))
            self.register_buffer("cache", torch.zeros(2), persistent=False)

    out["state_dict_keys"] = sorted(TwoLayer().state_dict().keys())
    return out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    meta = {"script": "make_golden.py", "torch": torch.__version__}
    optim = optim_goldens()
    lines = ["{", '"meta": ' + json.dumps(meta) + ",", '"optim": ' + json.dumps(optim, separators=(",", ":")) + ",",
             '"cases": {']
    names = list(CASES)
    for i, name in enumerate(names):
        sep = "," if i + 1 < len(names) else ""
        lines.append(json.dumps(name) + ": " + json.dumps(CASES[name], separators=(",", ":"), allow_nan=False) + sep)
    lines += ["}", "}"]
    with open(os.path.join(out_dir, "ops.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} cases to {os.path.join(out_dir, 'ops.json')}")


if __name__ == "__main__":
    main()
