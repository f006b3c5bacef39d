#!/usr/bin/python3
"""Reference side of the learner-step row of `onlinerl-bench bench`: one GRPO update written plainly in PyTorch
(/usr/bin/python3's torch, the same libtorch as the C# binding), on the batch and weights that
LearnerBench.cs wrote. The model is qwen2_reference.py's Llama/Qwen2 forward pass with the policy's
weights as leaf tensors that require gradients.

    learner_reference.py CONFIG_JSON

CONFIG_JSON: {"threads": int, "directory": DIR}. DIR holds policy/ and reference/ (config.json +
model.safetensors) and batch.json:
    {"options": {"learning_rate", "weight_decay", "max_grad_norm", "clip_low", "clip_high", "kl_beta",
                 "max_importance_weight", "std_eps"},
     "groups": [{"prompt": [ids], "completions": [{"tokens": [ids], "logprobs": [floats], "reward": r}]}]}
Protocol (the same as reference.py's), one JSON object per line:
  stdout at start:  {"torch_version", "threads", "libtorch"}
  stdin  request:   {"workload": "learner_step", "count": N} -> stdout {"seconds": wall time of N updates, "loss": the last one's}
  stdin  request:   {"quit": true} (or end of input)  -> exit

One update: forward of the policy and of the frozen reference on prompt + completion rows (right
padded), log-probs of the completion tokens, group-normalised advantages (r - mean) / (std + eps),
the token-level clipped surrogate with the truncated importance weight min(pi_old / pi_behaviour, C)
and the k3 KL penalty (DeepSeekMath eq. 3 and 4, DAPO's token-level mean), backward,
clip_grad_norm_, AdamW step; the clip fractions, mean ratio, mean KL and importance weights are read back as a trainer logs them.
"""

import json
import sys
import time

import torch

from qwen2_reference import Reference, load_checkpoint
from reference import mapped_libtorch, send


def build_batch(groups):
    """Rows prompt + completion, right padded with 0, as OnlineRl.Training.RolloutBatch lays them out."""
    rows = [(g["prompt"], c) for g in groups for c in g["completions"]]
    length = max(len(p) + len(c["tokens"]) for p, c in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.int64)
    mask = torch.zeros(len(rows), length - 1)
    behaviour = torch.zeros(len(rows), length - 1)
    for r, (prompt, completion) in enumerate(rows):
        tokens = completion["tokens"]
        ids[r, :len(prompt)] = torch.tensor(prompt)
        ids[r, len(prompt):len(prompt) + len(tokens)] = torch.tensor(tokens)
        # Entry t of a per-token tensor belongs to token t + 1 (the one predicted at position t).
        mask[r, len(prompt) - 1:len(prompt) - 1 + len(tokens)] = 1
        behaviour[r, len(prompt) - 1:len(prompt) - 1 + len(tokens)] = torch.tensor(completion["logprobs"])
    rewards = torch.tensor([[c["reward"] for c in g["completions"]] for g in groups], dtype=torch.float32)
    return ids, mask, behaviour, rewards


def token_log_probs(model, ids):
    logits = model.forward(ids)[:, :-1]
    return logits.log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def main():
    if len(sys.argv) != 2:
        print("usage: learner_reference.py CONFIG_JSON", file=sys.stderr)
        return 2
    config = json.loads(sys.argv[1])
    torch.set_num_threads(config["threads"])
    directory = config["directory"]
    policy = Reference(*load_checkpoint(f"{directory}/policy"))
    reference = Reference(*load_checkpoint(f"{directory}/reference"))
    params = list(policy.w.values())
    for p in params:
        p.requires_grad_(True)
    with open(f"{directory}/batch.json") as f:
        spec = json.load(f)
    o = spec["options"]
    ids, mask, behaviour, rewards = build_batch(spec["groups"])
    optimizer = torch.optim.AdamW(params, lr=o["learning_rate"], weight_decay=o["weight_decay"])

    def step():
        # Group-relative advantages, one per completion, broadcast over its tokens.
        advantages = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + o["std_eps"])).reshape(-1, 1)
        with torch.no_grad():
            ref_log_probs = token_log_probs(reference, ids)
        log_probs = token_log_probs(policy, ids)
        old = log_probs.detach()  # one update per batch: the sampling-time policy is the current one
        ratio = torch.exp(log_probs - old)
        surrogate = torch.min(ratio * advantages, ratio.clamp(1 - o["clip_low"], 1 + o["clip_high"]) * advantages)
        weight = torch.exp(old - behaviour)  # pi_old / pi_behaviour, a constant
        log_r = ref_log_probs - log_probs
        kl = torch.exp(log_r) - 1 - log_r
        per_token = -weight.clamp(max=o["max_importance_weight"]) * surrogate + o["kl_beta"] * kl
        loss = (per_token * mask).sum() / mask.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, o["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            def masked_mean(x):
                return (x * mask).sum() / mask.sum()
            low = (ratio < 1 - o["clip_low"]) & (advantages < 0)
            high = (ratio > 1 + o["clip_high"]) & (advantages > 0)
            stats = torch.stack([masked_mean(low), masked_mean(high), masked_mean(ratio), masked_mean(kl),
                                 masked_mean(weight), (weight * mask).max()]).tolist()
        return loss.item(), stats

    send({"torch_version": torch.__version__, "threads": torch.get_num_threads(), "libtorch": mapped_libtorch()})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        if request["workload"] != "learner_step":
            raise SystemExit(f"unknown workload {request['workload']}")
        start = time.perf_counter()
        loss = float("nan")
        for _ in range(int(request["count"])):
            loss, _ = step()
        send({"seconds": time.perf_counter() - start, "loss": loss})
    return 0


if __name__ == "__main__":
    sys.exit(main())
