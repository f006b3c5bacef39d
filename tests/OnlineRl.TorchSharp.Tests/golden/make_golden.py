#!/usr/bin/python3
"""Golden values for the OnlineRl.Torch binding tests (GoldenOpTests.cs, OptimGoldenTests.cs).

Run with the system interpreter, whose torch imports the same libtorch (Debian's 1.13) as the binding:

    /usr/bin/python3 tests/OnlineRl.Torch.Tests/golden/make_golden.py [OUT_DIR]

It writes OUT_DIR/ops.json (default: the folder of this script). The output is deterministic: running it
again reproduces the checked-in file byte for byte (GoldenOpTests checks this).

ops.json holds
  "cases": one entry per op case, keyed by name. Each has the inputs (dtype, shape, row-major data, whether
      the input requires grad), the outputs, one cotangent per output that requires grad, and the gradient of
      sum_i sum(out_i * cotangent_i) with respect to each input (null where there is none). "exact" marks
      cases whose floats must match bit for bit (the random number generators). Inputs and cotangents of a
      case are drawn from a generator seeded by the CRC-32 of the case's name, so adding a case leaves the
      others unchanged. The C# test has one lambda per case name, mirroring the Python lambda below.
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


def case(name, fn, *specs, grad=True, exact=False):
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
        "exact": exact,
    }


def seeded(seed, fn):
    """fn() right after torch.manual_seed(seed): the global generator, as the binding's torch.manual_seed."""
    def run(*args):
        torch.manual_seed(seed)
        return fn(*args)
    return run


NAN, INF = float("nan"), float("inf")

# ---- element-wise, one input ----------------------------------------------------------------------------

case("neg", lambda x: x.neg(), N(3, 4))
case("neg_operator", lambda x: -x, N(3, 4))
case("exp", lambda x: x.exp(), N(3, 4))
case("log", lambda x: x.log(), U(3, 4, lo=0.1, hi=3))
case("sqrt", lambda x: x.sqrt(), U(3, 4, lo=0.1, hi=3))
case("rsqrt", lambda x: x.rsqrt(), U(3, 4, lo=0.1, hi=3))
case("abs", lambda x: x.abs(), N(3, 4))
case("sigmoid", lambda x: x.sigmoid(), N(3, 4, scale=2))
case("tanh", lambda x: x.tanh(), N(3, 4, scale=2))
case("relu", lambda x: x.relu(), N(3, 4))
case("silu", lambda x: F.silu(x), N(3, 4, scale=2))
case("gelu", lambda x: F.gelu(x), N(3, 4, scale=2))
case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), N(3, 4, scale=2))
case("sin", lambda x: x.sin(), N(3, 4, scale=2))
case("cos", lambda x: x.cos(), N(3, 4, scale=2))
case("logical_not", lambda x: x.logical_not(), B(3, 4))
case("logical_not_float", lambda x: x.logical_not(), T([0.0, 1.5, -2.0, 0.0, 3.0]))
case("floor", lambda x: x.floor(), N(3, 4, scale=3))
case("ceil", lambda x: x.ceil(), N(3, 4, scale=3))
case("round", lambda x: x.round(), T([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51, 3.7, -3.7]))
case("sign", lambda x: x.sign(), T([-2.0, 0.0, 3.5, -0.25, 1e-8]))
case("square", lambda x: x.square(), N(3, 4))
case("reciprocal", lambda x: x.reciprocal(), U(3, 4, lo=0.5, hi=2))
case("log1p", lambda x: x.log1p(), U(3, 4, lo=-0.5, hi=2))
case("expm1", lambda x: x.expm1(), N(3, 4))
case("isnan", lambda x: x.isnan(), T([1.0, NAN, INF, -INF, 0.0]))
case("isinf", lambda x: x.isinf(), T([1.0, NAN, INF, -INF, 0.0]))
case("isfinite", lambda x: x.isfinite(), T([1.0, NAN, INF, -INF, 0.0]))
case("exp_float64", lambda x: x.exp(), N(3, 4, dtype=torch.float64))
case("tanh_float64", lambda x: x.tanh(), N(3, 4, dtype=torch.float64))
case("exp_transposed", lambda x: x.t().exp(), N(3, 4))
case("neg_int64", lambda x: x.neg(), I(-5, 5, 6))
case("abs_int32", lambda x: x.abs(), I(-5, 5, 6, dtype=torch.int32))
case("square_int64", lambda x: x.square(), I(-5, 5, 6))
case("sqrt_int64", lambda x: x.sqrt(), I(0, 9, 6))

# ---- element-wise, two inputs ---------------------------------------------------------------------------

case("add", lambda a, b: a.add(b), N(3, 4), N(3, 4))
case("sub", lambda a, b: a.sub(b), N(3, 4), N(3, 4))
case("mul", lambda a, b: a.mul(b), N(3, 4), N(3, 4))
case("div", lambda a, b: a.div(b), N(3, 4), U(3, 4, lo=0.5, hi=2))
case("pow", lambda a, b: a.pow(b), U(3, 4, lo=0.5, hi=2), N(3, 4))
case("maximum", lambda a, b: a.maximum(b), N(3, 4), N(3, 4))
case("minimum", lambda a, b: a.minimum(b), N(3, 4), N(3, 4))
case("remainder", lambda a, b: a.remainder(b), N(3, 4, scale=3), U(3, 4, lo=0.5, hi=2))
case("floor_divide", lambda a, b: torch.div(a, b, rounding_mode="floor"), N(3, 4, scale=3), U(3, 4, lo=0.5, hi=2))
for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
    case(op, lambda a, b, op=op: getattr(a, op)(b), I(0, 3, 3, 4, dtype=torch.float32), I(0, 3, 3, 4, dtype=torch.float32))
case("logical_and", lambda a, b: a.logical_and(b), B(3, 4), B(3, 4))
case("logical_or", lambda a, b: a.logical_or(b), B(3, 4), B(3, 4))
case("operators_mix", lambda a, b, c: (a + b) * c - a / c, N(3, 4), N(3, 4), U(3, 4, lo=0.5, hi=2))

# broadcasting
case("add_broadcast_row", lambda a, b: a.add(b), N(3, 4), N(4))
case("mul_broadcast_outer", lambda a, b: a.mul(b), N(3, 1), N(1, 4))
case("sub_broadcast_3d", lambda a, b: a.sub(b), N(2, 1, 4), N(3, 1))
case("div_broadcast_0dim", lambda a, b: a.div(b), N(3, 4), U(lo=0.5, hi=2))
case("maximum_broadcast", lambda a, b: a.maximum(b), N(3, 4), N(4))
case("pow_broadcast", lambda a, b: a.pow(b), U(2, 3, lo=0.5, hi=2), N(2, 1))
case("lt_broadcast", lambda a, b: a.lt(b), N(3, 4), N(4))

# type promotion
case("add_int64_float32", lambda a, b: a.add(b), I(-5, 5, 3, 4), N(3, 4))
case("mul_int32_int64", lambda a, b: a.mul(b), I(-5, 5, 3, 4, dtype=torch.int32), I(-5, 5, 3, 4))
case("add_float32_float64", lambda a, b: a.add(b), N(3, 4), N(3, 4, dtype=torch.float64))
case("div_int64", lambda a, b: a.div(b), I(-9, 9, 8), T([1, 2, 3, -4, 5, -6, 7, 8], dtype=torch.int64))
case("floor_divide_int64", lambda a, b: torch.div(a, b, rounding_mode="floor"),
     T([-7, 7, -7, 7, 6, -6], dtype=torch.int64), T([2, -2, -2, 2, 3, 4], dtype=torch.int64))
case("remainder_int64", lambda a, b: a.remainder(b),
     T([-7, 7, -7, 7, 6, -6], dtype=torch.int64), T([2, -2, -2, 2, 3, 4], dtype=torch.int64))
case("pow_int64", lambda a, b: a.pow(b), I(-3, 4, 6), I(0, 4, 6))
case("eq_int64", lambda a, b: a.eq(b), I(0, 3, 8), I(0, 3, 8))
case("add_bool_int64", lambda a, b: a.add(b), B(6), I(0, 5, 6))

# with a double scalar
case("add_scalar", lambda x: x.add(2.5), N(3, 4))
case("sub_scalar", lambda x: x.sub(2.5), N(3, 4))
case("mul_scalar", lambda x: x.mul(-1.5), N(3, 4))
case("div_scalar", lambda x: x.div(3.0), N(3, 4))
case("pow_scalar_2", lambda x: x.pow(2.0), N(3, 4))
case("pow_scalar_half", lambda x: x.pow(0.5), U(3, 4, lo=0.1, hi=3))
case("pow_scalar_3", lambda x: x.pow(3.0), N(3, 4))
case("pow_scalar_neg", lambda x: x.pow(-1.5), U(3, 4, lo=0.5, hi=2))
for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
    case(op + "_scalar", lambda x, op=op: getattr(x, op)(1.0), I(0, 3, 3, 4, dtype=torch.float32))
case("add_scalar_int64", lambda x: x.add(2.5), I(-5, 5, 6))
case("add_scalar_float64", lambda x: x.add(0.1), N(6, dtype=torch.float64))
case("mul_scalar_float16", lambda x: x.mul(0.1), N(6, dtype=torch.float16), grad=False)

# with an integer scalar
case("add_long", lambda x: x.add(2), N(3, 4))
case("add_long_int64", lambda x: x.add(3), I(-5, 5, 6))
case("add_long_int32", lambda x: x.add(3), I(-5, 5, 6, dtype=torch.int32))
case("sub_long", lambda x: x.sub(2), N(3, 4))
case("sub_long_int64", lambda x: x.sub(7), I(-5, 5, 6))
case("mul_long", lambda x: x.mul(3), N(3, 4))
case("mul_long_int64", lambda x: x.mul(-3), I(-5, 5, 6))
case("div_long_int64", lambda x: x.div(2), I(-5, 5, 6))
case("div_long", lambda x: x.div(4), N(3, 4))
case("floor_divide_long_int64", lambda x: torch.div(x, 3, rounding_mode="floor"), I(-9, 9, 8))
case("remainder_long_int64", lambda x: x.remainder(3), I(-9, 9, 8))
case("remainder_long_float", lambda x: x.remainder(2), N(3, 4, scale=3))
case("eq_long_int64", lambda x: x.eq(2), I(0, 4, 8))
case("ne_long_int64", lambda x: x.ne(2), I(0, 4, 8))

# scalar on the left
case("rsub_double", lambda x: 2.5 - x, N(3, 4))
case("rsub_long", lambda x: 3 - x, N(3, 4))
case("rsub_long_int64", lambda x: 3 - x, I(-5, 5, 6))
case("rdiv_double", lambda x: 2.0 / x, U(3, 4, lo=0.5, hi=2))
case("radd_double", lambda x: 2.5 + x, N(3, 4))
case("radd_long", lambda x: 2 + x, N(3, 4))
case("rmul_double", lambda x: 0.5 * x, N(3, 4))
case("rmul_long", lambda x: 3 * x, I(-5, 5, 6))
case("pow_scalar_base", lambda x: torch.pow(2.0, x), N(3, 4))

# ---- in place (on a clone, so that gradients flow to the leaf) ------------------------------------------


def inplace(fn):
    def run(x, *rest):
        y = x.clone()
        fn(y, *rest)
        return y
    return run


case("add__tensor", inplace(lambda y, b: y.add_(b)), N(3, 4), N(3, 4))
case("add__broadcast", inplace(lambda y, b: y.add_(b)), N(3, 4), N(4))
case("add__scalar", inplace(lambda y: y.add_(1.5)), N(3, 4))
case("sub__tensor", inplace(lambda y, b: y.sub_(b)), N(3, 4), N(3, 4))
case("mul__tensor", inplace(lambda y, b: y.mul_(b)), N(3, 4), N(3, 4))
case("mul__scalar", inplace(lambda y: y.mul_(-2.5)), N(3, 4))
case("div__scalar", inplace(lambda y: y.div_(3.0)), N(3, 4))
case("zero_", inplace(lambda y: y.zero_()), N(3, 4))
case("fill_", inplace(lambda y: y.fill_(2.5)), N(3, 4))
case("fill__int64", inplace(lambda y: y.fill_(7.0)), I(0, 5, 6))
case("copy__broadcast", inplace(lambda y, s: y.copy_(s)), N(3, 4), N(4))
case("copy__convert", inplace(lambda y, s: y.copy_(s)), I(0, 5, 6), N(6, scale=3))
case("add__int64", inplace(lambda y, b: y.add_(b)), I(0, 5, 6), I(0, 5, 6))
case("uniform_", seeded(5, lambda: torch.empty(3, 4).uniform_(-2.0, 3.0)), exact=True)
case("normal_", seeded(6, lambda: torch.empty(2, 5).normal_(1.0, 0.5)), exact=True)
case("normal__float64", seeded(7, lambda: torch.empty(4, 5, dtype=torch.float64).normal_(-1.0, 2.0)), exact=True)

# ---- selection ------------------------------------------------------------------------------------------

case("clamp", lambda x: x.clamp(-0.5, 0.5), N(3, 4))
case("clamp_min", lambda x: x.clamp(min=-0.5), N(3, 4))
case("clamp_max", lambda x: x.clamp(max=0.5), N(3, 4))
# The binding passes whole-number bounds of an integer tensor as integers (the type stays int64), others as floats.
case("clamp_int64", lambda x: x.clamp(2, 5), I(0, 8, 8))
case("clamp_int64_fractional", lambda x: x.clamp(2.5, 5), I(0, 8, 8))
case("clamp_tensor", lambda x, lo, hi: x.clamp(lo, hi), N(3, 4), U(3, 4, lo=-1, hi=0), U(4, lo=0, hi=1))
case("clamp_tensor_min", lambda x, lo: x.clamp(min=lo), N(3, 4), U(3, 4, lo=-1, hi=0))
case("clamp_tensor_max", lambda x, hi: x.clamp(max=hi), N(3, 4), U(3, 4, lo=0, hi=1))
case("where", lambda c, a, b: torch.where(c, a, b), B(3, 4), N(3, 4), N(3, 4))
case("where_broadcast", lambda c, a, b: torch.where(c, a, b), B(3, 1), N(3, 4), N(4))
case("where_int64", lambda c, a, b: torch.where(c, a, b), B(6), I(0, 5, 6), I(5, 9, 6))
case("masked_fill", lambda x, m: x.masked_fill(m, -1.5), N(3, 4), B(3, 4))
case("masked_fill_neg_inf", lambda x, m: x.masked_fill(m, -INF), N(3, 4), B(3, 4))
case("masked_fill_broadcast", lambda x, m: x.masked_fill(m, 0.25), N(3, 4), B(4))
case("masked_fill_int64", lambda x, m: x.masked_fill(m, 7.0), I(0, 5, 6), B(6))
case("masked_select", lambda x, m: x.masked_select(m), N(3, 4), B(3, 4))
case("masked_select_broadcast", lambda x, m: x.masked_select(m), N(3, 4), B(4))

# ---- reductions -----------------------------------------------------------------------------------------

case("sum_all", lambda x: x.sum(), N(2, 3, 4))
case("sum_all_keepdim", lambda x: x.sum((0, 1, 2), keepdim=True), N(2, 3, 4))
case("sum_dim", lambda x: x.sum(1), N(2, 3, 4))
case("sum_dim_keepdim", lambda x: x.sum(1, keepdim=True), N(2, 3, 4))
case("sum_neg_dim", lambda x: x.sum(-1), N(2, 3, 4))
case("sum_dims", lambda x: x.sum((0, 2)), N(2, 3, 4))
case("sum_dims_keepdim", lambda x: x.sum((0, 2), keepdim=True), N(2, 3, 4))
case("sum_int64", lambda x: x.sum(), I(-5, 5, 3, 4))
case("sum_int32_dim", lambda x: x.sum(0), I(-5, 5, 3, 4, dtype=torch.int32))
case("sum_bool", lambda x: x.sum(), B(3, 4))
case("sum_float64", lambda x: x.sum(1), N(3, 4, dtype=torch.float64))
case("mean_all", lambda x: x.mean(), N(2, 3, 4))
case("mean_all_keepdim", lambda x: x.mean((0, 1, 2), keepdim=True), N(2, 3, 4))
case("mean_dim", lambda x: x.mean(1), N(2, 3, 4))
case("mean_dim_keepdim", lambda x: x.mean(-1, keepdim=True), N(2, 3, 4))
case("mean_dims", lambda x: x.mean((0, 2)), N(2, 3, 4))
case("amax_all", lambda x: x.amax((0, 1, 2)), N(2, 3, 4))
case("amax_dims", lambda x: x.amax((0, 2)), N(2, 3, 4))
case("amax_dims_keepdim", lambda x: x.amax((1,), keepdim=True), N(2, 3, 4))
case("amin_all", lambda x: x.amin((0, 1, 2)), N(2, 3, 4))
case("amin_dims", lambda x: x.amin((0, 2)), N(2, 3, 4))
case("amin_dims_keepdim", lambda x: x.amin((-1,), keepdim=True), N(2, 3, 4))
case("max_all", lambda x: x.max(), N(3, 4))
case("min_all", lambda x: x.min(), N(3, 4))
case("max_all_int64", lambda x: x.max(), I(-9, 9, 8))
case("logsumexp_dim", lambda x: x.logsumexp(1), N(2, 3, 4))
case("logsumexp_dim_keepdim", lambda x: x.logsumexp(-1, keepdim=True), N(2, 3, 4))
case("logsumexp_dims", lambda x: x.logsumexp((0, 2)), N(2, 3, 4))
case("logsumexp_large", lambda x: x.logsumexp(1), N(3, 4, scale=50))
case("prod_all", lambda x: x.prod(), U(3, 4, lo=0.5, hi=1.5))
case("prod_all_keepdim", lambda x: x.prod().reshape(1, 1), U(3, 4, lo=0.5, hi=1.5))
case("prod_dim", lambda x: x.prod(1), U(3, 4, lo=0.5, hi=1.5))
case("prod_dim_keepdim", lambda x: x.prod(0, keepdim=True), U(3, 4, lo=0.5, hi=1.5))
case("prod_int64", lambda x: x.prod(), I(-3, 4, 6))
case("all_all", lambda x: x.all(), B(3, 4))
case("all_all_true", lambda x: x.all(), T([True, True, True], dtype=torch.bool))
case("all_dims", lambda x: x.all(2).all(0), B(2, 3, 4))
case("all_dim_keepdim", lambda x: x.all(1, keepdim=True), B(2, 3, 4))
case("any_all", lambda x: x.any(), B(3, 4))
case("any_all_false", lambda x: x.any(), T([False, False], dtype=torch.bool))
case("any_dims_negative", lambda x: x.any(1).any(0), B(2, 3, 4))
case("any_dims_keepdim", lambda x: x.any(0, keepdim=True).any(2, keepdim=True), B(2, 3, 4))
case("var_all", lambda x: x.var(), N(3, 4))
case("var_all_keepdim", lambda x: x.var((0, 1), keepdim=True), N(3, 4))
case("var_dim", lambda x: x.var(1), N(3, 4))
case("var_dims_keepdim", lambda x: x.var((0, 2), keepdim=True), N(2, 3, 4))
case("var_correction0", lambda x: x.var(1, correction=0), N(3, 4))
case("std_all", lambda x: x.std(), N(3, 4))
case("std_dim", lambda x: x.std(0), N(3, 4))
case("std_dims_keepdim_correction0", lambda x: x.std((0, 2), correction=0, keepdim=True), N(2, 3, 4))
case("norm_2_all", lambda x: x.norm(2), N(3, 4))
case("norm_1_all", lambda x: x.norm(1), N(3, 4))
case("norm_inf_all", lambda x: x.norm(INF), N(3, 4))
case("norm_3_all", lambda x: x.norm(3), N(3, 4))
case("norm_all_keepdim", lambda x: x.norm(2, dim=(0, 1), keepdim=True), N(3, 4))
case("norm_2_dim", lambda x: x.norm(2, dim=1), N(3, 4))
case("norm_dims_keepdim", lambda x: x.norm(2, dim=(0, 2), keepdim=True), N(2, 3, 4))
case("argmax_all", lambda x: x.argmax(), N(3, 4))
case("argmax_dim", lambda x: x.argmax(1), N(3, 4))
case("argmax_dim_keepdim", lambda x: x.argmax(0, keepdim=True), N(3, 4))
case("argmax_ties", lambda x: x.argmax(), T([1.0, 3.0, 3.0, 0.0]))
case("argmin_all", lambda x: x.argmin(), N(3, 4))
case("argmin_dim", lambda x: x.argmin(-1), N(3, 4))
case("argmin_dim_keepdim", lambda x: x.argmin(1, keepdim=True), N(3, 4))
case("max_dim", lambda x: x.max(1), N(3, 4))
case("max_dim_keepdim", lambda x: x.max(0, keepdim=True), N(3, 4))
case("min_dim", lambda x: x.min(-1), N(3, 4))
case("min_dim_keepdim", lambda x: x.min(1, keepdim=True), N(2, 3, 4))
case("softmax_dim0", lambda x: x.softmax(0), N(3, 4))
case("softmax_last", lambda x: x.softmax(-1), N(3, 4))
case("softmax_3d_dim1", lambda x: x.softmax(1), N(2, 3, 4))
case("softmax_float64", lambda x: x.softmax(-1), N(3, 4, dtype=torch.float64))
case("log_softmax_dim0", lambda x: x.log_softmax(0), N(3, 4))
case("log_softmax_last", lambda x: x.log_softmax(-1), N(3, 4))
case("log_softmax_large", lambda x: x.log_softmax(-1), N(3, 4, scale=100))
case("cumsum_dim0", lambda x: x.cumsum(0), N(3, 4))
case("cumsum_last", lambda x: x.cumsum(-1), N(3, 4))
case("cumsum_int64", lambda x: x.cumsum(0), I(-5, 5, 6))
case("topk_largest", lambda x: x.topk(2), N(3, 5))
case("topk_smallest", lambda x: x.topk(3, -1, largest=False), N(3, 5))
case("topk_dim0", lambda x: x.topk(2, 0), N(3, 5))
case("topk_unsorted", lambda x: x.topk(3, -1, sorted=False), N(2, 6))
case("sort", lambda x: x.sort(), N(3, 5))
case("sort_descending", lambda x: x.sort(-1, descending=True), N(3, 5))
case("sort_dim0", lambda x: x.sort(0), N(3, 5))
case("sort_stable", lambda x: x.sort(stable=True), T([2.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0]))
case("sort_int64", lambda x: x.sort(stable=True, descending=True), I(0, 4, 8))

# ---- linear algebra -------------------------------------------------------------------------------------

case("matmul_vec_vec", lambda a, b: a.matmul(b), N(4), N(4))
case("matmul_mat_vec", lambda a, b: a.matmul(b), N(3, 4), N(4))
case("matmul_vec_mat", lambda a, b: a.matmul(b), N(3), N(3, 4))
case("matmul_mat_mat", lambda a, b: a.matmul(b), N(3, 4), N(4, 5))
case("matmul_batched_mat", lambda a, b: a.matmul(b), N(2, 3, 4), N(4, 5))
case("matmul_batched_batched", lambda a, b: a.matmul(b), N(2, 3, 4), N(2, 4, 5))
case("matmul_broadcast", lambda a, b: a.matmul(b), N(2, 1, 3, 4), N(3, 4, 2))
case("matmul_vec_batched", lambda a, b: a.matmul(b), N(4), N(2, 4, 5))
case("matmul_float64", lambda a, b: a.matmul(b), N(3, 4, dtype=torch.float64), N(4, 2, dtype=torch.float64))
case("matmul_transposed", lambda a, b: a.matmul(b.t()), N(3, 4), N(5, 4))
case("matmul_int64", lambda a, b: a.matmul(b), I(-3, 3, 2, 3), I(-3, 3, 3, 2))
case("bmm", lambda a, b: a.bmm(b), N(2, 3, 4), N(2, 4, 5))
case("linear_bias", lambda x, w, b: F.linear(x, w, b), N(3, 4), N(5, 4), N(5))
case("linear_nobias", lambda x, w: F.linear(x, w), N(3, 4), N(5, 4))
case("linear_3d", lambda x, w, b: F.linear(x, w, b), N(2, 3, 4), N(5, 4), N(5))
case("linear_1d", lambda x, w, b: F.linear(x, w, b), N(4), N(2, 4), N(2))

# ---- indexing -------------------------------------------------------------------------------------------

case("embedding", lambda i, w: F.embedding(i, w), I(0, 6, 2, 3), N(6, 4))
case("embedding_1d", lambda i, w: F.embedding(i, w), T([5, 0, 5, 2], dtype=torch.int64), N(6, 3))
case("index_select_dim0", lambda x, i: x.index_select(0, i), N(4, 3), T([3, 0, 3], dtype=torch.int64))
case("index_select_dim1", lambda x, i: x.index_select(1, i), N(2, 5), T([4, 1], dtype=torch.int64))
case("index_select_int32_index", lambda x, i: x.index_select(0, i), N(4, 3), T([2, 1], dtype=torch.int32))
case("gather_dim1", lambda x, i: x.gather(1, i), N(3, 4), I(0, 4, 3, 2))
case("gather_dim0", lambda x, i: x.gather(0, i), N(3, 4), I(0, 3, 2, 4))
case("scatter_dim1", lambda x, i, s: x.scatter(1, i, s), N(3, 4), T([[3, 0], [1, 2], [0, 3]], dtype=torch.int64), N(3, 2))
case("scatter_dim0", lambda x, i, s: x.scatter(0, i, s), N(3, 4), T([[2, 0, 1, 2]], dtype=torch.int64), N(1, 4))
case("scatter_add_dim0", lambda x, i, s: x.scatter_add(0, i, s), N(3, 4), I(0, 3, 4, 4), N(4, 4))
case("scatter_add_dim1", lambda x, i, s: x.scatter_add(1, i, s), N(2, 3), T([[0, 0, 2, 0], [1, 1, 1, 2]], dtype=torch.int64), N(2, 4))
case("index_row", lambda x: x[1], N(3, 4))
case("index_row_negative", lambda x: x[-1], N(3, 4))
case("multinomial", seeded(11, lambda p: p.multinomial(3)), U(2, 6, lo=0.1, hi=1), grad=False, exact=True)
case("multinomial_replacement", seeded(12, lambda p: p.multinomial(8, True)), U(2, 4, lo=0.1, hi=1), grad=False, exact=True)
case("multinomial_1d", seeded(13, lambda p: p.multinomial(2)), T([0.1, 0.0, 0.6, 0.3]), grad=False, exact=True)

# ---- shape ----------------------------------------------------------------------------------------------

case("view", lambda x: x.view(4, 3), N(3, 4))
case("view_infer", lambda x: x.view(-1, 2), N(3, 4))
case("reshape", lambda x: x.reshape(2, 6), N(3, 4))
case("reshape_noncontiguous", lambda x: x.t().reshape(-1), N(3, 4))
case("expand", lambda x: x.expand(3, 4), N(3, 1))
case("expand_keep", lambda x: x.expand(2, -1, 4), N(3, 1))
case("permute", lambda x: x.permute(2, 0, 1), N(2, 3, 4))
case("transpose", lambda x: x.transpose(0, 2), N(2, 3, 4))
case("t", lambda x: x.t(), N(3, 4))
case("narrow", lambda x: x.narrow(1, 1, 2), N(3, 4))
case("slice_step2", lambda x: x[:, 0:4:2], N(3, 5))
case("slice_negative", lambda x: x[:, -3:-1], N(3, 5))
case("slice_dim0", lambda x: x[1:3], N(4, 2))
case("select", lambda x: x.select(1, 2), N(3, 4))
case("select_negative", lambda x: x.select(-1, -1), N(2, 3, 4))
case("unsqueeze", lambda x: x.unsqueeze(0), N(3, 4))
case("unsqueeze_negative", lambda x: x.unsqueeze(-1), N(3, 4))
case("squeeze_all", lambda x: x.squeeze(), N(1, 3, 1, 4))
case("squeeze_dim", lambda x: x.squeeze(2), N(1, 3, 1, 4))
case("flatten", lambda x: x.flatten(), N(2, 3, 4))
case("flatten_range", lambda x: x.flatten(1, 2), N(2, 3, 4, 2))
case("triu", lambda x: x.triu(), N(4, 4))
case("triu_diagonal1", lambda x: x.triu(1), N(4, 5))
case("triu_batched", lambda x: x.triu(), N(2, 3, 3))
case("tril", lambda x: x.tril(), N(4, 4))
case("tril_diagonal_neg1", lambda x: x.tril(-1), N(5, 4))
case("triu_bool", lambda x: x.triu(1), T([[True] * 4] * 4, dtype=torch.bool))
case("cat_dim0", lambda a, b: torch.cat([a, b], 0), N(2, 3), N(1, 3))
case("cat_dim1", lambda a, b: torch.cat([a, b], 1), N(2, 3), N(2, 2))
case("cat_three", lambda a, b, c: torch.cat([a, b, c], -1), N(2), N(3), N(1))
case("cat_int64", lambda a, b: torch.cat([a, b]), I(0, 5, 3), I(0, 5, 2))
case("stack_dim0", lambda a, b: torch.stack([a, b]), N(2, 3), N(2, 3))
case("stack_last", lambda a, b, c: torch.stack([a, b, c], -1), N(2, 3), N(2, 3), N(2, 3))
case("repeat", lambda x: x.repeat(2, 3), N(2, 2))
case("repeat_new_dims", lambda x: x.repeat(2, 1, 2), N(3))
case("flip_dim0", lambda x: x.flip(0), N(3, 4))
case("flip_dims", lambda x: x.flip(0, 1), N(3, 4))
case("contiguous", lambda x: x.t().contiguous(), N(3, 4))
case("clone", lambda x: x.clone(), N(3, 4))
case("detach", lambda x: x.detach(), N(3, 4))
case("cpu", lambda x: x.cpu(), N(3, 4))
case("from_bytes", lambda x: x.clone(), N(3, 4, dtype=torch.bfloat16), grad=False)

# ---- creation -------------------------------------------------------------------------------------------

case("tensor_float32", lambda: torch.tensor([[1.5, -2.25, 3.0], [0.1, 0.2, 0.3]], dtype=torch.float32))
case("tensor_float64_to_float16", lambda: torch.tensor([0.1, 1.0 / 3.0, 65504.0, -2.5e-3], dtype=torch.float64).to(torch.float16))
case("tensor_int64", lambda: torch.tensor([[1, -2], [3, 4]], dtype=torch.int64))
case("tensor_bool", lambda: torch.tensor([True, False, True]))
case("scalar_tensor", lambda: torch.scalar_tensor(2.5))
case("scalar_tensor_int64", lambda: torch.scalar_tensor(7, dtype=torch.int64))
case("zeros", lambda: torch.zeros(2, 3))
case("ones_int32", lambda: torch.ones(2, 3, dtype=torch.int32))
case("full", lambda: torch.full((2, 3), 1.25))
case("full_int64", lambda: torch.full((3,), 7, dtype=torch.int64))
case("zeros_like", lambda x: torch.zeros_like(x), N(2, 3), grad=False)
case("ones_like", lambda x: torch.ones_like(x), I(0, 3, 4), grad=False)
case("empty_shape", lambda: torch.tensor(list(torch.empty(2, 3, 4).shape)))
case("arange_end", lambda: torch.arange(5))
case("arange_float", lambda: torch.arange(0.5, 3.0, 0.5, dtype=torch.float32))
case("arange_step", lambda: torch.arange(1, 10, 3))
case("linspace", lambda: torch.linspace(-1.0, 1.0, 7))
case("rand", seeded(42, lambda: torch.rand(3, 4)), exact=True)
case("rand_float64", seeded(43, lambda: torch.rand(3, 4, dtype=torch.float64)), exact=True)
case("randn", seeded(44, lambda: torch.randn(3, 4)), exact=True)
case("randn_large", seeded(45, lambda: torch.randn(4, 8)), exact=True)
case("randn_float64", seeded(46, lambda: torch.randn(4, 5, dtype=torch.float64)), exact=True)
case("randint", seeded(47, lambda: torch.randint(0, 10, (3, 4))), exact=True)
case("randint_int32", seeded(48, lambda: torch.randint(-5, 5, (6,), dtype=torch.int32)), exact=True)
case("rand_then_randn", seeded(49, lambda: torch.stack([torch.rand(5), torch.randn(5)])), exact=True)

# ---- conversion -----------------------------------------------------------------------------------------

case("to_float16", lambda x: x.to(torch.float16), N(3, 4, scale=100))
case("to_bfloat16", lambda x: x.to(torch.bfloat16), N(3, 4, scale=100))
case("to_float64", lambda x: x.to(torch.float64), N(3, 4))
case("to_int32", lambda x: x.to(torch.int32), N(3, 4, scale=5))
case("to_int64", lambda x: x.to(torch.int64), N(3, 4, scale=5))
case("to_bool", lambda x: x.to(torch.bool), T([0.0, 1.0, -0.5, 0.0, 2.0]))
case("float64_to_float32", lambda x: x.to(torch.float32), N(3, 4, dtype=torch.float64))
case("float16_to_float32", lambda x: x.to(torch.float32), N(3, 4, dtype=torch.float16))
case("bfloat16_to_float32", lambda x: x.to(torch.float32), N(3, 4, dtype=torch.bfloat16))
case("float16_to_bfloat16", lambda x: x.to(torch.bfloat16), N(6, dtype=torch.float16), grad=False)
case("int64_to_float32", lambda x: x.to(torch.float32), I(-1000, 1000, 6))
case("int64_to_int32", lambda x: x.to(torch.int32), I(-1000, 1000, 6))
case("int32_to_int64", lambda x: x.to(torch.int64), I(-1000, 1000, 6, dtype=torch.int32))
case("int64_to_bool", lambda x: x.to(torch.bool), I(-2, 2, 6))
case("bool_to_float32", lambda x: x.to(torch.float32), B(6))
case("bool_to_int64", lambda x: x.to(torch.int64), B(6))

# ---- neural-network functions ---------------------------------------------------------------------------

case("dropout", seeded(21, lambda x: F.dropout(x, 0.3, training=True)), N(4, 5), exact=True)
case("dropout_eval", lambda x: F.dropout(x, 0.3, training=False), N(4, 5))
case("f_softmax", lambda x: F.softmax(x, 1), N(3, 4))
case("f_log_softmax", lambda x: F.log_softmax(x, 0), N(3, 4))
case("f_silu", lambda x: F.silu(x), N(3, 4))
case("f_gelu", lambda x: F.gelu(x), N(3, 4))
case("f_gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), N(3, 4))
case("f_embedding", lambda i, w: F.embedding(i, w), I(0, 5, 3), N(5, 2))
case("f_linear", lambda x, w: F.linear(x, w), N(2, 3), N(4, 3))
case("cross_entropy", lambda x, t: F.cross_entropy(x, t), N(4, 5), I(0, 5, 4))
case("cross_entropy_sum", lambda x, t: F.cross_entropy(x, t, reduction="sum"), N(4, 5), I(0, 5, 4))
case("cross_entropy_none", lambda x, t: F.cross_entropy(x, t, reduction="none"), N(4, 5), I(0, 5, 4))
case("cross_entropy_ignore_index", lambda x, t: F.cross_entropy(x, t), N(5, 3), T([0, -100, 2, -100, 1], dtype=torch.int64))
case("cross_entropy_ignore_custom", lambda x, t: F.cross_entropy(x, t, ignore_index=1, reduction="none"),
     N(4, 3), T([0, 1, 2, 1], dtype=torch.int64))
case("cross_entropy_label_smoothing", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), N(4, 5), I(0, 5, 4))
case("cross_entropy_label_smoothing_sum_ignore",
     lambda x, t: F.cross_entropy(x, t, reduction="sum", ignore_index=-100, label_smoothing=0.2),
     N(5, 4), T([3, -100, 0, 1, -100], dtype=torch.int64))
case("cross_entropy_label_smoothing_none", lambda x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=0.3),
     N(3, 4), I(0, 4, 3))
case("cross_entropy_3d", lambda x, t: F.cross_entropy(x, t), N(2, 4, 3), I(0, 4, 2, 3))
case("cross_entropy_float64", lambda x, t: F.cross_entropy(x, t), N(3, 4, dtype=torch.float64), I(0, 4, 3))
case("logsigmoid", lambda x: F.logsigmoid(x), N(3, 4, scale=10))
case("softplus", lambda x: F.softplus(x), N(3, 4, scale=10))
case("softplus_beta_threshold", lambda x: F.softplus(x, beta=2.0, threshold=5.0), N(3, 4, scale=3))
case("mse_loss", lambda a, b: F.mse_loss(a, b), N(3, 4), N(3, 4))
case("mse_loss_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"), N(3, 4), N(3, 4))
case("mse_loss_none", lambda a, b: F.mse_loss(a, b, reduction="none"), N(3, 4), N(3, 4))

# ---- optimizers, clipping, initialisation (OptimGoldenTests) ---------------------------------------------


def optim_goldens():
    g = torch.Generator().manual_seed(zlib.crc32(b"optim"))
    out = {}

    # AdamW: 5 steps, fixed parameters and per-step gradients, nonzero weight decay. In step 2 the second
    # parameter has no gradient: PyTorch skips it and its own step count (bias correction) falls behind.
    shapes = [(3, 4), (5,)]
    hyper = {"lr": 0.01, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}
    params = [torch.randn(s, generator=g) for s in shapes]
    initial = [enc(p) for p in params]
    params = [torch.nn.Parameter(p.clone()) for p in params]
    opt = torch.optim.AdamW(params, lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"],
                            weight_decay=hyper["weight_decay"], foreach=False)
    steps = []
    for step in range(5):
        grads = [torch.randn(s, generator=g) for s in shapes]
        if step == 1:
            grads[1] = None
        for p, gr in zip(params, grads):
            p.grad = None if gr is None else gr.clone()
        opt.step()
        steps.append({"grads": [None if gr is None else enc(gr) for gr in grads], "params": [enc(p) for p in params]})
    out["adamw"] = {
        "hyper": hyper, "initial": initial, "steps": steps,
        "exp_avg": [enc(opt.state[p]["exp_avg"]) for p in params],
        "exp_avg_sq": [enc(opt.state[p]["exp_avg_sq"]) for p in params],
    }

    # clip_grad_norm_: the norm before clipping and the clipped gradients.
    grads = [torch.randn(s, generator=g) for s in [(3, 4), (5,), (2, 2)]]
    clip = []
    for max_norm, norm_type in [(1.0, 2.0), (100.0, 2.0), (0.5, INF), (100.0, INF), (2.0, 1.0)]:
        ps = [torch.nn.Parameter(torch.zeros(gr.shape)) for gr in grads]
        for p, gr in zip(ps, grads):
            p.grad = gr.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
        clip.append({"max_norm": max_norm, "norm_type": number(norm_type), "total_norm": total.item(),
                     "clipped": [enc(p.grad) for p in ps]})
    out["clip_grad_norm"] = {"grads": [enc(gr) for gr in grads], "cases": clip}

    # torch.nn.Linear under manual_seed (kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)) drawn by
    # uniform_, weight first, then bias: the same draws as the binding's Linear).
    linear = []
    for seed, fan_in, fan_out, bias, dtype in [(7, 5, 3, True, torch.float32), (11, 16, 4, False, torch.float32),
                                               (3, 1, 2, True, torch.float32), (5, 7, 3, True, torch.float64)]:
        torch.manual_seed(seed)
        layer = torch.nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype)
        linear.append({"seed": seed, "in_features": fan_in, "out_features": fan_out, "bias": bias,
                       "dtype": DTYPE_NAMES[dtype], "weight": enc(layer.weight),
                       "bias_values": enc(layer.bias) if bias else None})
    out["linear_init"] = linear

    # state_dict names of the module the C# test builds (TwoLayer).
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
