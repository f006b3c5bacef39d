#!/usr/bin/python3
"""Golden values for the OnlineRl.Algorithms tests (GoldenTests.cs).

Run with the system interpreter, whose torch imports the same libtorch (Debian's 1.13) as the binding:

    /usr/bin/python3 tests/OnlineRl.Algorithms.Tests/golden/make_golden.py [OUT_DIR]

It writes OUT_DIR/algorithms.json (default: the folder of this script). The output is deterministic: running
it again reproduces the checked-in file byte for byte (GoldenTests checks this).

Every formula here is written again, independently of the C# code and straight from its paper: per element
and per sequence with Python loops, where the C# code uses masked tensor reductions. Everything is computed
in float64. The C# test replays each case in float64 (tolerance 1e-9) and in float32 (looser tolerance).

algorithms.json: {"torch": version, "cases": {name: case}}, one case per line. A case has
  "kind":    which C# function(s) it exercises (GoldenTests.cs has one runner per kind);
  "options": the scalar settings;
  "inputs":  tensors {"shape", "data", "grad"} ("grad": true for inputs the loss is differentiated by);
  "outputs": tensors {"shape", "data"} or numbers (statistics) or lists (indices);
  "grads":   d loss / d input for every input with "grad": true.
Inputs are drawn from a generator seeded by the CRC-32 of the case name and rounded to 4 decimals.
"""
import json
import math
import os
import sys
import zlib

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
f64 = torch.float64

# ---- inputs -------------------------------------------------------------------------------------------


class Inputs:
    """Random inputs of one case, from a generator seeded by the case name."""

    def __init__(self, name):
        self.g = torch.Generator().manual_seed(zlib.crc32(name.encode()))

    def randn(self, *shape, scale=1.0, shift=0.0):
        x = torch.randn(*shape, generator=self.g, dtype=f64) * scale + shift
        return rounded(x)

    def rand(self, *shape, scale=1.0, shift=0.0):
        x = torch.rand(*shape, generator=self.g, dtype=f64) * scale + shift
        return rounded(x)


def rounded(x):
    return torch.tensor([round(v, 4) for v in x.reshape(-1).tolist()], dtype=f64).reshape(x.shape)


# Completion masks [B=4, T=6]: 1 = completion token, 0 = prompt or padding.
MASK_A = torch.tensor([[1, 1, 1, 1, 1, 1],   # completion only
                       [0, 0, 1, 1, 1, 0],   # prompt, completion, padding
                       [0, 1, 1, 0, 0, 0],   # prompt, short completion, padding
                       [0, 0, 0, 0, 0, 0]],  # fully masked row
                      dtype=f64)
MASK_B = torch.tensor([[1, 1, 1, 1, 0, 0],
                       [0, 1, 1, 1, 1, 1],
                       [0, 0, 1, 0, 1, 1],   # a masked hole inside the completion (e.g. tool output)
                       [1, 1, 1, 1, 1, 1]],
                      dtype=f64)
B, T = 4, 6


def policy_inputs(name, mask, old=True, ref=False, behaviour=False, per_token_adv=False):
    """log π_θ, log π_old, log π_ref, log π_behav [B, T] and advantages, spread so that clipping happens."""
    r = Inputs(name)
    x = {"logp": r.rand(B, T, scale=-3.0, shift=-0.05)}
    if old:
        x["old_logp"] = rounded(x["logp"] + r.randn(B, T, scale=0.3))
    x["adv"] = r.randn(B, T) if per_token_adv else r.randn(B)
    x["mask"] = mask
    if ref:
        x["ref_logp"] = rounded(x["logp"] + r.randn(B, T, scale=0.25))
    if behaviour:
        base = x["old_logp"] if old else x["logp"]
        x["behav_logp"] = rounded(base + r.randn(B, T, scale=0.5))
    return x


# ---- reference implementations (from the papers) ----------------------------------------------------


def grpo_advantages(rewards, scale_std, eps):
    """DeepSeekMath §4.1.2: (r_i - mean(r)) / std(r), std with Bessel's correction (as TRL); Dr. GRPO: r_i - mean(r)."""
    out = []
    for group in rewards.tolist():
        n = len(group)
        if n == 1:
            out.append([0.0])
            continue
        mean = sum(group) / n
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (n - 1))
        out.append([(r - mean) / (std + eps) if scale_std else r - mean for r in group])
    return torch.tensor(out, dtype=f64)


def gae(rewards, values, mask, gamma, lam):
    """GAE (Schulman et al. 2016, eq. 16): A_k = sum_l (gamma lam)^l delta_{k+l}, delta_k = r_k + gamma V_{k+1} - V_k,
    over the completion tokens of each row as the steps of one episode (V after the last step = 0)."""
    adv = torch.zeros(rewards.shape, dtype=f64)
    ret = torch.zeros(rewards.shape, dtype=f64)
    for b in range(rewards.shape[0]):
        steps = [t for t in range(rewards.shape[1]) if mask[b, t] == 1]
        n = len(steps)
        for k, t in enumerate(steps):
            total = 0.0
            for l in range(n - k):
                s = steps[k + l]
                next_value = values[b, steps[k + l + 1]].item() if k + l + 1 < n else 0.0
                delta = rewards[b, s].item() + gamma * next_value - values[b, s].item()
                total += (gamma * lam) ** l * delta
            adv[b, t] = total
            ret[b, t] = total + values[b, t].item()
    return adv, ret


def whiten(x, mask, shift_mean, eps=1e-8):
    """TRL masked_whiten: (x - mean) / sqrt(var + eps) over the masked elements, var with Bessel's correction."""
    xs = [x[b, t].item() for b in range(x.shape[0]) for t in range(x.shape[1]) if mask[b, t] == 1]
    n = len(xs)
    mean = sum(xs) / n if n else 0.0
    var = sum((v - mean) ** 2 for v in xs) / (n - 1) if n > 1 else 0.0
    out = (x - mean) / math.sqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def kl_estimate(logp, ref_logp, kind):
    """Schulman (2020): with r = pi_ref / pi_theta, k1 = -log r, k2 = (log r)^2 / 2, k3 = (r - 1) - log r."""
    if kind == "none":
        return logp * 0.0
    r = torch.exp(ref_logp - logp)
    if kind == "k1":
        return -torch.log(r)
    if kind == "k2":
        return 0.5 * torch.log(r) ** 2
    return (r - 1) - torch.log(r)


def masked_token_mean(values, mask, zero_like):
    tokens = [values[b, t] for b in range(mask.shape[0]) for t in range(mask.shape[1]) if mask[b, t] == 1]
    return sum(tokens) / len(tokens) if tokens else zero_like


def policy_loss(logp, adv, mask, o, old_logp=None, ref_logp=None, behav_logp=None):
    """GRPO (Shao et al. 2024, eq. 3) with DAPO's clip-higher and token-level loss, Dr. GRPO's constant
    normaliser, and the decoupled PPO objective (Hilton et al. 2021) with truncated importance weights."""
    n_rows, n_cols = logp.shape
    prox = old_logp if old_logp is not None else logp.detach()
    zero = logp.sum() * 0.0
    rows, ratios, weights, kls = [], [], [], []
    low = high = count = 0
    for i in range(n_rows):
        tokens = []
        for t in range(n_cols):
            if mask[i, t] != 1:
                continue
            a = adv[i, t] if adv.dim() == 2 else adv[i]
            rho = torch.exp(logp[i, t] - prox[i, t])
            objective = torch.min(rho * a, torch.clamp(rho, 1 - o["clip_low"], 1 + o["clip_high"]) * a)
            if behav_logp is not None:
                w = math.exp(prox[i, t].item() - behav_logp[i, t].item())
                weights.append(w)
                if o["cap"] is not None:
                    w = min(w, o["cap"])
                objective = w * objective
            loss = -objective
            if ref_logp is not None or o["kl"] == "none":
                kl = kl_estimate(logp[i, t], ref_logp[i, t] if ref_logp is not None else None, o["kl"])
                kls.append(kl.item())
                if o["beta"] != 0:
                    loss = loss + o["beta"] * kl
            tokens.append(loss)
            ratios.append(rho.item())
            count += 1
            low += 1 if rho.item() < 1 - o["clip_low"] and a.item() < 0 else 0
            high += 1 if rho.item() > 1 + o["clip_high"] and a.item() > 0 else 0
        rows.append(tokens)
    every = [x for row in rows for x in row]
    if o["aggregation"] == "token_mean":
        loss = sum(every) / len(every) if every else zero
    elif o["aggregation"] == "sequence_mean":
        loss = sum(sum(row) / len(row) if row else zero for row in rows) / n_rows
    else:
        max_len = o["max_len"] if o["max_len"] is not None else n_cols
        loss = (sum(every) if every else zero) / (n_rows * max_len)
    stats = {
        "clip_low": low / max(count, 1), "clip_high": high / max(count, 1),
        "ratio_mean": sum(ratios) / max(count, 1), "kl_mean": sum(kls) / max(count, 1) if kls else 0.0,
        "is_mean": sum(weights) / len(weights) if weights else (0.0 if behav_logp is not None else 1.0),
        "is_max": max(weights) if weights else (0.0 if behav_logp is not None else 1.0),
    }
    return loss + zero, stats


def value_loss(values, old_values, returns, mask, eps):
    """PPO2 clipped value loss: 0.5 * mean max((V - R)^2, (clip(V, V_old - eps, V_old + eps) - R)^2)."""
    terms, clipped_count = [], 0
    for b in range(values.shape[0]):
        for t in range(values.shape[1]):
            if mask[b, t] != 1:
                continue
            v, v_old, r = values[b, t], old_values[b, t].item(), returns[b, t].item()
            unclipped = (v - r) ** 2
            clipped = (torch.clamp(v, v_old - eps, v_old + eps) - r) ** 2
            terms.append(torch.max(unclipped, clipped))
            clipped_count += 1 if clipped.item() > unclipped.item() else 0
    loss = 0.5 * sum(terms) / len(terms) if terms else values.sum() * 0.0
    return loss + values.sum() * 0.0, clipped_count / max(len(terms), 1)


def kl_penalized_rewards(scores, logp, ref_logp, mask, beta, kind):
    """Ziegler et al. 2019 / InstructGPT: r_t = -beta KL_t, plus the score at the last completion token."""
    rewards = torch.zeros(logp.shape, dtype=f64)
    for b in range(logp.shape[0]):
        steps = [t for t in range(logp.shape[1]) if mask[b, t] == 1]
        for t in steps:
            rewards[b, t] = -beta * kl_estimate(logp[b, t], ref_logp[b, t], kind).item()
        if steps:
            rewards[b, steps[-1]] += scores[b].item()
    return rewards


def entropy(logits):
    """H = -sum_v p_v log p_v with p = exp(z) / sum exp(z)."""
    p = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    return -(p * torch.log(p)).sum(-1)


def dpo_loss(chosen, chosen_mask, rejected, rejected_mask, ref_chosen, ref_rejected, o):
    """DPO (Rafailov et al. 2023), cDPO label smoothing, IPO (Azar et al. 2023), RPO's NLL term (Pang et al. 2024)."""
    beta = o["beta"]
    losses, nlls, chosen_rewards, rejected_rewards = [], [], [], []

    def seq(logp, mask, i):
        return sum(logp[i, t] for t in range(logp.shape[1]) if mask[i, t] == 1)

    def ref_seq(ref, mask, i):
        if ref is None:
            return 0.0
        if ref.dim() == 1:
            return ref[i].item()
        return sum(ref[i, t].item() for t in range(ref.shape[1]) if mask[i, t] == 1)

    for i in range(chosen.shape[0]):
        pi_w, pi_l = seq(chosen, chosen_mask, i), seq(rejected, rejected_mask, i)
        ref_w, ref_l = ref_seq(ref_chosen, chosen_mask, i), ref_seq(ref_rejected, rejected_mask, i)
        h = (pi_w - ref_w) - (pi_l - ref_l)
        if o["loss_type"] == "sigmoid":
            eps = o["label_smoothing"]
            loss = -(1 - eps) * torch.log(torch.sigmoid(beta * h)) - eps * torch.log(torch.sigmoid(-beta * h))
        else:
            loss = (h - 1 / (2 * beta)) ** 2
        losses.append(loss)
        nlls.append(-pi_w / sum(chosen_mask[i].tolist()))
        chosen_rewards.append(beta * (pi_w.item() - ref_w))
        rejected_rewards.append(beta * (pi_l.item() - ref_l))
    n = len(losses)
    loss = sum(losses) / n
    nll = sum(nlls) / n
    if o["sft_weight"] != 0:
        loss = loss + o["sft_weight"] * nll
    stats = {
        "accuracy": sum(1.0 for w, l in zip(chosen_rewards, rejected_rewards) if w > l) / n,
        "margin": sum(w - l for w, l in zip(chosen_rewards, rejected_rewards)) / n,
        "chosen_reward": sum(chosen_rewards) / n,
        "rejected_reward": sum(rejected_rewards) / n,
        "sft_loss": nll.item(),
    }
    return loss, stats


def dpo_pairs(rewards, group_size):
    pairs = []
    for g in range(len(rewards) // group_size):
        idx = list(range(g * group_size, (g + 1) * group_size))
        best = max(idx, key=lambda i: rewards[i])   # first of equal maxima
        worst = min(idx, key=lambda i: rewards[i])  # first of equal minima
        if rewards[best] != rewards[worst]:
            pairs.append([g, best, worst])
    return pairs


def groups_with_distinct_rewards(rewards, group_size):
    return [g for g in range(len(rewards) // group_size)
            if len(set(rewards[g * group_size:(g + 1) * group_size])) > 1]


# ---- cases ----------------------------------------------------------------------------------------------


def number(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def enc(t, grad=None):
    out = {"shape": list(t.shape), "data": [number(v) for v in t.detach().reshape(-1).tolist()]}
    if grad is not None:
        out["grad"] = grad
    return out


CASES = {}


def case(name, kind, options, inputs, compute, grad_inputs=()):
    """Runs `compute(leaves) -> outputs` and records inputs, outputs and d outputs["loss"] / d grad_inputs."""
    leaves = {k: (v.clone().requires_grad_(True) if k in grad_inputs else v) for k, v in inputs.items()}
    outputs = compute(leaves)
    grads = {}
    if grad_inputs:
        gs = torch.autograd.grad(outputs["loss"], [leaves[k] for k in grad_inputs], allow_unused=True)
        grads = {k: enc(g if g is not None else torch.zeros_like(leaves[k])) for k, g in zip(grad_inputs, gs)}
    CASES[name] = {
        "kind": kind,
        "options": options,
        "inputs": {k: enc(v, k in grad_inputs) for k, v in inputs.items()},
        "outputs": {k: enc(v) if torch.is_tensor(v) else number(v) for k, v in outputs.items()},
        "grads": grads,
    }


def advantage_cases():
    rewards = torch.tensor([[1.0, 1.0, 1.0, 1.0],     # all equal: advantages 0
                            [0.0, 1.0, 1.0, 0.0],
                            [0.25, -1.5, 2.0, 0.75],
                            [0.0, 0.0, 0.0, 1.0]], dtype=f64)
    for name, scale, eps in [("grpo_advantages_std", True, 1e-4), ("grpo_advantages_std_eps_1e-6", True, 1e-6),
                             ("grpo_advantages_dr_grpo", False, 1e-4)]:
        case(name, "grpo_advantages", {"scale_std": scale, "eps": eps}, {"rewards": rewards},
             lambda x, s=scale, e=eps: {"advantages": grpo_advantages(x["rewards"], s, e)})
    r = Inputs("grpo_advantages_random")
    case("grpo_advantages_random", "grpo_advantages", {"scale_std": True, "eps": 1e-4}, {"rewards": r.randn(3, 8)},
         lambda x: {"advantages": grpo_advantages(x["rewards"], True, 1e-4)})

    for name, mask, gamma, lam, sparse in [("gae_gamma0.9_lambda0.8", MASK_A, 0.9, 0.8, False),
                                           ("gae_gamma1_lambda0.95_hole", MASK_B, 1.0, 0.95, False),
                                           ("gae_sparse_reward_gamma0.99_lambda0.95", MASK_A, 0.99, 0.95, True)]:
        r = Inputs(name)
        rewards, values = r.randn(B, T), r.randn(B, T)
        if sparse:  # a score at the last completion token only, as after KlPenalizedRewards with beta = 0
            rewards = torch.zeros(B, T, dtype=f64)
            rewards[0, 5], rewards[1, 4], rewards[2, 2] = 1.0, -0.5, 2.0
        case(name, "gae", {"gamma": gamma, "lambda": lam}, {"rewards": rewards, "values": values, "mask": mask},
             lambda x, g=gamma, l=lam: dict(zip(("advantages", "returns"), gae(x["rewards"], x["values"], x["mask"], g, l))))

    for name, mask, shift in [("whiten_shift_mean", MASK_B, True), ("whiten_scale_only", MASK_B, False),
                              ("whiten_fully_masked_row", MASK_A, True)]:
        r = Inputs(name)
        case(name, "whiten", {"shift_mean": shift}, {"x": r.randn(B, T, scale=2.0, shift=0.5), "mask": mask},
             lambda x, s=shift: {"whitened": whiten(x["x"], x["mask"], s)})


def kl_cases():
    for kind in ["none", "k1", "k2", "k3"]:
        name = "kl_" + kind
        x = policy_inputs(name, MASK_A, old=False, ref=True)
        inputs = {"logp": x["logp"], "mask": MASK_A} if kind == "none" else {"logp": x["logp"], "ref_logp": x["ref_logp"], "mask": MASK_A}

        def compute(v, kind=kind):
            kl = kl_estimate(v["logp"], v.get("ref_logp"), kind)
            return {"kl": kl, "loss": masked_token_mean(kl, v["mask"], v["logp"].sum() * 0.0)}
        case(name, "kl", {"estimator": kind}, inputs, compute, grad_inputs=("logp",))


def grpo_options(**kw):
    o = {"clip_low": 0.2, "clip_high": 0.2, "aggregation": "token_mean", "max_len": None, "beta": 0.0, "kl": "k3", "cap": None}
    o.update(kw)
    return o


def grpo_cases():
    specs = [
        ("grpo_token_mean_clip_higher", MASK_A, dict(clip_high=0.28), dict()),
        ("grpo_sequence_mean_beta_k3", MASK_A, dict(aggregation="sequence_mean", beta=0.04), dict(ref=True)),
        ("grpo_sequence_mean_no_empty_row", MASK_B, dict(aggregation="sequence_mean"), dict()),
        ("grpo_dr_grpo_max_len8_beta_k1", MASK_B, dict(aggregation="sum_over_max_tokens", max_len=8, beta=0.1, kl="k1"), dict(ref=True)),
        ("grpo_dr_grpo_default_len_beta_k2", MASK_A, dict(aggregation="sum_over_max_tokens", beta=0.05, kl="k2"), dict(ref=True)),
        ("grpo_kl_stat_only", MASK_B, dict(kl="k3"), dict(ref=True)),
        ("grpo_reference_free_kl_none", MASK_B, dict(beta=0.1, kl="none"), dict()),
        ("grpo_on_policy", MASK_A, dict(clip_low=0.1, clip_high=0.3), dict(old=False)),
        ("grpo_per_token_advantages", MASK_B, dict(clip_low=0.15, clip_high=0.25), dict(per_token_adv=True)),
        ("grpo_off_policy_truncated_is", MASK_A, dict(clip_high=0.28, beta=0.02, cap=1.5), dict(ref=True, behaviour=True)),
        ("grpo_off_policy_untruncated_is", MASK_B, dict(aggregation="sequence_mean"), dict(behaviour=True)),
        ("grpo_off_policy_on_policy_prox", MASK_B, dict(cap=1.2), dict(old=False, behaviour=True)),
    ]
    for name, mask, opts, inp in specs:
        o = grpo_options(**opts)
        x = policy_inputs(name, mask, **inp)

        def compute(v, o=o):
            loss, stats = policy_loss(v["logp"], v["adv"], v["mask"], o, v.get("old_logp"), v.get("ref_logp"), v.get("behav_logp"))
            return {"loss": loss, **stats}
        case(name, "grpo_loss", o, x, compute, grad_inputs=("logp",))

    rewards = [1.0, 1.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 2.0, -1.0, 2.0, 2.0]
    case("grpo_dynamic_sampling_filter", "grpo_filter", {"rewards": rewards, "group_size": 4}, {},
         lambda v: {"kept": groups_with_distinct_rewards(rewards, 4)})


def ppo_cases():
    name = "ppo_policy_clip0.2"
    x = policy_inputs(name, MASK_A, per_token_adv=True)
    o = grpo_options()

    def compute_policy(v):
        loss, stats = policy_loss(v["logp"], v["adv"], v["mask"], o, v["old_logp"])
        return {"loss": loss, **stats}
    case(name, "ppo_policy", {"clip": 0.2}, x, compute_policy, grad_inputs=("logp",))

    for name, mask, eps in [("ppo_value_clip0.2", MASK_A, 0.2), ("ppo_value_clip0.5_hole", MASK_B, 0.5)]:
        r = Inputs(name)
        values = r.randn(B, T)
        inputs = {"values": values, "old_values": rounded(values + r.randn(B, T, scale=0.4)), "returns": r.randn(B, T), "mask": mask}

        def compute(v, eps=eps):
            loss, frac = value_loss(v["values"], v["old_values"], v["returns"], v["mask"], eps)
            return {"loss": loss, "clip_fraction": frac}
        case(name, "ppo_value", {"clip": eps}, inputs, compute, grad_inputs=("values",))

    for name, mask, beta, kind in [("ppo_rewards_k1", MASK_A, 0.05, "k1"), ("ppo_rewards_k3_hole", MASK_B, 0.1, "k3")]:
        x = policy_inputs(name, mask, old=False, ref=True)
        inputs = {"scores": Inputs(name + "/scores").randn(B), "logp": x["logp"], "ref_logp": x["ref_logp"], "mask": mask}
        case(name, "ppo_rewards", {"beta": beta, "estimator": kind}, inputs,
             lambda v, b=beta, k=kind: {"rewards": kl_penalized_rewards(v["scores"], v["logp"], v["ref_logp"], v["mask"], b, k)})

    for name, c2 in [("ppo_total_entropy_bonus", 0.01), ("ppo_total_no_entropy", 0.0)]:
        x = policy_inputs(name, MASK_B, per_token_adv=True)
        r = Inputs(name + "/values")
        values = r.randn(B, T)
        inputs = {**x, "values": values, "old_values": rounded(values + r.randn(B, T, scale=0.3)), "returns": r.randn(B, T),
                  "logits": r.randn(B, T, 5, scale=2.0)}
        o = grpo_options()

        def compute(v, c2=c2, o=o):
            pg, _ = policy_loss(v["logp"], v["adv"], v["mask"], o, v["old_logp"])
            vf, _ = value_loss(v["values"], v["old_values"], v["returns"], v["mask"], 0.2)
            loss = pg + 0.5 * vf
            if c2 != 0:
                loss = loss - c2 * masked_token_mean(entropy(v["logits"]), v["mask"], None)
            return {"loss": loss, "entropy": entropy(v["logits"])}
        case(name, "ppo_total", {"clip": 0.2, "value_clip": 0.2, "value_coef": 0.5, "entropy_coef": c2}, inputs, compute,
             grad_inputs=("logp", "values", "logits"))


def dpo_cases():
    rewards = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5, 2.0, -1.0, 2.0, -1.0, 0.0, 0.25, 0.25, 0.0, 3.0, 1.0, 2.0, 0.0]
    case("dpo_pairs_from_groups", "dpo_pairs", {"rewards": rewards, "group_size": 4}, {},
         lambda v: {"pairs": dpo_pairs(rewards, 4)})
    case("dpo_pairs_group_of_one", "dpo_pairs", {"rewards": [1.0, 0.0, 2.0], "group_size": 1}, {},
         lambda v: {"pairs": dpo_pairs([1.0, 0.0, 2.0], 1)})

    chosen_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=f64)
    rejected_mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=f64)
    specs = [
        ("dpo_sigmoid", dict(beta=0.1), "tokens"),
        ("dpo_cdpo_label_smoothing", dict(beta=0.2, label_smoothing=0.1), "tokens"),
        ("dpo_ipo", dict(beta=0.5, loss_type="ipo"), "tokens"),
        ("dpo_reference_free", dict(beta=0.1, reference_free=True), None),
        ("dpo_sft_term", dict(beta=0.1, sft_weight=0.7), "tokens"),
        ("dpo_sequence_level_reference", dict(beta=0.3), "sequences"),
        ("dpo_ipo_sft_reference_free", dict(beta=0.25, loss_type="ipo", reference_free=True, sft_weight=0.3), None),
    ]
    for name, opts, ref in specs:
        o = {"beta": 0.1, "loss_type": "sigmoid", "label_smoothing": 0.0, "reference_free": False, "sft_weight": 0.0}
        o.update(opts)
        r = Inputs(name)
        inputs = {"chosen": r.rand(5, 6, scale=-2.0, shift=-0.05), "chosen_mask": chosen_mask,
                  "rejected": r.rand(5, 4, scale=-2.0, shift=-0.05), "rejected_mask": rejected_mask}
        if ref == "tokens":
            inputs["ref_chosen"] = rounded(inputs["chosen"] + r.randn(5, 6, scale=0.3))
            inputs["ref_rejected"] = rounded(inputs["rejected"] + r.randn(5, 4, scale=0.3))
        elif ref == "sequences":
            inputs["ref_chosen"] = r.randn(5, scale=2.0, shift=-5.0)
            inputs["ref_rejected"] = r.randn(5, scale=2.0, shift=-4.0)

        def compute(v, o=o):
            loss, stats = dpo_loss(v["chosen"], v["chosen_mask"], v["rejected"], v["rejected_mask"],
                                   v.get("ref_chosen"), v.get("ref_rejected"), o)
            return {"loss": loss, **stats}
        case(name, "dpo", o, inputs, compute, grad_inputs=("chosen", "rejected"))


def reward_model_cases():
    r = Inputs("rm_bradley_terry")
    inputs = {"chosen": r.randn(8, scale=1.5), "rejected": r.randn(8, scale=1.5)}

    def compute(v):
        margin = v["chosen"] - v["rejected"]
        loss = -torch.log(torch.sigmoid(margin)).mean()
        return {"loss": loss, "accuracy": sum(1.0 for m in margin.tolist() if m > 0) / len(margin)}
    case("rm_bradley_terry", "rm", {}, inputs, compute, grad_inputs=("chosen", "rejected"))


def binding_op_cases():
    """The logsigmoid and softplus ops these losses use, against torch.nn.functional."""
    x = torch.cat([torch.tensor([-60.0, -25.0, -1.0, 0.0, 0.5, 3.0, 12.0, 25.0, 60.0], dtype=f64), Inputs("ops").randn(7, scale=3.0)])
    case("op_logsigmoid", "op_logsigmoid", {}, {"x": x},
         lambda v: {"out": F.logsigmoid(v["x"]), "loss": F.logsigmoid(v["x"]).sum()}, grad_inputs=("x",))
    for name, beta, threshold in [("op_softplus", 1.0, 20.0), ("op_softplus_beta2_threshold5", 2.0, 5.0)]:
        case(name, "op_softplus", {"beta": beta, "threshold": threshold}, {"x": x},
             lambda v, b=beta, t=threshold: {"out": F.softplus(v["x"], b, t), "loss": F.softplus(v["x"], b, t).sum()},
             grad_inputs=("x",))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    advantage_cases()
    kl_cases()
    grpo_cases()
    ppo_cases()
    dpo_cases()
    reward_model_cases()
    binding_op_cases()
    lines = [json.dumps(name) + ": " + json.dumps(c, separators=(",", ":")) for name, c in CASES.items()]
    text = '{"torch": ' + json.dumps(torch.__version__) + ', "cases": {\n' + ",\n".join(lines) + "\n}}\n"
    with open(os.path.join(out_dir, "algorithms.json"), "w") as f:
        f.write(text)
    print(f"wrote {len(CASES)} cases to {os.path.join(out_dir, 'algorithms.json')}")


if __name__ == "__main__":
    main()
