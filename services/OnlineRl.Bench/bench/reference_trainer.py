#!/usr/bin/python3
"""A plain PyTorch trainer for the "a+b=" task, written from the papers: the anchor our learner's curves are
measured against (`onlinerl-bench compare-reference`). Runs on /usr/bin/python3 (Debian's torch), with the model of
qwen2_reference.py loaded from one of OUR checkpoints (config.json + model.safetensors + onlinerl_tokenizer.json),
so both sides start from the same policy.

    reference_trainer.py CONFIG_JSON

CONFIG_JSON keys (all required unless marked):
  checkpoint      the starting policy (a folder written by `onlinerl sft`)
  heldout         JSONL of {"prompt": "12+345=", "answer": "357"}: the held-out problems (the same file ours evaluates)
  algorithm       grpo | ppo | dpo
  steps           learner updates at most;  seconds: wall-clock budget of training (generation + updates, evaluation excluded)
  learning_rate, warmup_steps, prompts_per_step, group_size, temperature, max_new_tokens, max_digits
  clip, kl_beta   GRPO's clip ε and k3 KL β (PPO: clip ε and the β of its KL-penalised reward)
  dpo_beta, dpo_sft_weight   DPO's β, and α of RPO's NLL term on the chosen completions (optional, 0)
  filter_equal_groups        GRPO: train only on groups whose rewards differ (DAPO's dynamic-sampling filter; optional, false)
  epochs          passes over each batch (optional, 1)
  gamma, lam, value_coefficient, value_clip   PPO (optional: 1.0, 0.95, 0.5, 0.2)
  shuffle_rewards permute rewards across the batch: the control that must not learn (optional, false)
  eval_every      held-out evaluation every N updates (and at 0 and at the end)
  seed, threads
  csv             where to write the curve: update, seconds, heldout_accuracy, reward_mean, loss, kl

One learner update (strictly alternating with generation, as a plain trainer does):
  sample prompts_per_step problems, group_size completions each at `temperature` (KV cache, stop at <eos>), reward
  1 when the completion (special tokens dropped, trimmed) equals the sum;
  GRPO (Shao et al. 2024, DeepSeekMath eq. 3, 4): Â_i = (r_i − mean r) / (std r + 1e-4) per group, token-mean of
      −min(ρÂ, clip(ρ, 1−ε, 1+ε)Â) + β·k3,  k3 = π_ref/π_θ − log(π_ref/π_θ) − 1,  ρ = π_θ/π_old;
  PPO (Schulman et al. 2017; Ziegler et al. 2019): per-token reward −β(log π_old − log π_ref) plus the score at the
      last token, GAE(γ, λ) over completion tokens with the value head, advantages whitened, token-mean clipped
      surrogate + c·½·max((V − R)², (V_clip − R)²);
  online DPO (Rafailov et al. 2023, eq. 7; Guo et al. 2024 "Direct Language Model Alignment from Online AI
      Feedback"): in each group the highest- vs the lowest-reward completion (first of equals), ties skipped,
      −log σ(β[(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))]), the mean over pairs, plus
      α·(−log π_θ(y_w) / |y_w|) (RPO, Pang et al. 2024) when dpo_sft_weight = α > 0;
  then clip the gradient norm at 1 and take an AdamW step (weight decay 0) at the rate of a linear warm-up
  followed by a constant rate. π_ref is the starting policy, frozen.
Held-out accuracy: greedy decoding of every held-out prompt, exact match, as ours (Evaluation.GreedyAccuracy).
Progress goes to stderr; the last stdout line is a JSON summary {"initial", "final", "updates", "seconds"}.
"""

import csv
import json
import math
import random
import sys
import time

import torch
import torch.nn.functional as F

from learner_reference import build_batch
from qwen2_reference import Reference, load_checkpoint

SPECIALS = ["<pad>", "<bos>", "<eos>"]  # OnlineRl.Tokenizers.CharTokenizer: ids 0, 1, 2, then the alphabet
EOS = 2


class CharTokenizer:
    def __init__(self, directory):
        with open(f"{directory}/onlinerl_tokenizer.json") as f:
            description = json.load(f)
        if description.get("kind") != "char":
            raise SystemExit(f"{directory}: the reference trainer needs a character tokenizer, found {description.get('kind')}")
        self.alphabet = description["alphabet"]
        self.ids = {c: i + len(SPECIALS) for i, c in enumerate(self.alphabet)}

    def encode(self, text):
        return [self.ids[c] for c in text]

    def decode(self, ids):
        return "".join(self.alphabet[i - len(SPECIALS)] for i in ids if i >= len(SPECIALS))


def problem(rng, max_digits):
    """One "a+b=" problem with the distribution of OnlineRl.Rewards.AdditionTask: 1..max_digits digits each."""
    def operand():
        digits = rng.randint(1, max_digits)
        return rng.randrange(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits)
    a, b = operand(), operand()
    return f"{a}+{b}=", str(a + b)


@torch.no_grad()
def generate(model, prompts, group, max_new_tokens, temperature, generator):
    """group completions per prompt (rows prompt-major), each (tokens, log-probs at the temperature)."""
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.int64)
    mask = torch.zeros(len(prompts), width, dtype=torch.int64)
    for i, p in enumerate(prompts):  # left padding: every prompt ends at the same column
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    ids, mask = ids.repeat_interleave(group, 0), mask.repeat_interleave(group, 0)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    cache = [None] * model.c["num_hidden_layers"]
    logits = model.forward(ids, cache, positions=positions, key_mask=mask)[:, -1]
    position = positions[:, -1:] + 1
    rows = ids.shape[0]
    steps_tokens, steps_log_probs = [], []
    done = torch.zeros(rows, dtype=torch.bool)
    for _ in range(max_new_tokens):
        if temperature == 0:
            nxt = logits.argmax(-1)
            lp = torch.zeros(rows)
        else:
            logp = (logits / temperature).log_softmax(-1)
            nxt = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            lp = logp.gather(1, nxt[:, None]).squeeze(1)
        steps_tokens.append(nxt)
        steps_log_probs.append(lp)
        done |= nxt == EOS
        if bool(done.all()):
            break
        mask = torch.cat((mask, torch.ones(rows, 1, dtype=torch.int64)), 1)
        logits = model.forward(nxt[:, None], cache, positions=position, key_mask=mask)[:, -1]
        position = position + 1
    # Each row ends at its first <eos> (kept) or at max_new_tokens; what was sampled after it is dropped.
    tokens, log_probs = [], []
    for row_tokens, row_log_probs in zip(torch.stack(steps_tokens, 1).tolist(), torch.stack(steps_log_probs, 1).tolist()):
        end = row_tokens.index(EOS) + 1 if EOS in row_tokens else len(row_tokens)
        tokens.append(row_tokens[:end])
        log_probs.append(row_log_probs[:end])
    return list(zip(tokens, log_probs))


def accuracy(model, tokenizer, heldout, max_new_tokens, batch=128):
    correct = 0
    for start in range(0, len(heldout), batch):
        chunk = heldout[start:start + batch]
        completions = generate(model, [tokenizer.encode(h["prompt"]) for h in chunk], 1, max_new_tokens, 0, None)
        correct += sum(tokenizer.decode(t).strip() == h["answer"].strip() for (t, _), h in zip(completions, chunk))
    return correct / len(heldout)


def token_log_probs(model, ids, temperature):
    """log π(token t+1 | tokens ..t) [B, L-1] at the sampling temperature (the distribution the tokens came from)."""
    logits = model.forward(ids)[:, :-1] / temperature
    return logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp(min=1)


def grpo_loss(policy, reference, ids, mask, rewards, old, o):
    """DeepSeekMath eq. 3 with the k3 KL of eq. 4, DAPO's token-level mean."""
    advantages = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)).reshape(-1, 1)
    log_probs = token_log_probs(policy, ids, o["temperature"])
    ratio = torch.exp(log_probs - old)
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - o["clip"], 1 + o["clip"]) * advantages)
    log_r = reference - log_probs
    kl = torch.exp(log_r) - 1 - log_r
    return masked_mean(-surrogate + o["kl_beta"] * kl, mask), masked_mean(kl, mask)


def gae(token_rewards, values, mask, gamma, lam):
    """Schulman et al. 2016: δ_t = r_t + γV_{t+1} − V_t, Â_t = δ_t + γλÂ_{t+1}, over the masked steps of each row."""
    advantages = torch.zeros_like(values)
    for b in range(values.shape[0]):
        next_value, next_advantage = 0.0, 0.0
        for t in reversed(range(values.shape[1])):
            if mask[b, t] == 0:
                continue
            delta = token_rewards[b, t] + gamma * next_value - values[b, t]
            next_advantage = delta + gamma * lam * next_advantage
            advantages[b, t] = next_advantage
            next_value = values[b, t]
    return advantages, advantages + values


def ppo_losses(policy, value_head, ids, mask, old, old_values, advantages, returns, o):
    hidden = policy.hidden(ids)
    head = policy.w.get("lm_head.weight", policy.w["model.embed_tokens.weight"])
    logits = (hidden @ head.t())[:, :-1] / o["temperature"]
    log_probs = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    values = F.linear(hidden, value_head["weight"], value_head["bias"]).squeeze(-1)[:, :-1]
    ratio = torch.exp(log_probs - old)
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - o["clip"], 1 + o["clip"]) * advantages)
    clipped = old_values + (values - old_values).clamp(-o["value_clip"], o["value_clip"])
    value_loss = 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), mask)
    return masked_mean(-surrogate, mask) + o["value_coefficient"] * value_loss, value_loss


def dpo_pairs(rewards):
    """(chosen, rejected) row indices: per group the first best and the first worst; ties give no pair."""
    pairs = []
    g = rewards.shape[1]
    for group, r in enumerate(rewards.tolist()):
        best, worst = r.index(max(r)), r.index(min(r))
        if r[best] > r[worst]:
            pairs.append((group * g + best, group * g + worst))
    return pairs


def main():
    if len(sys.argv) != 2:
        print("usage: reference_trainer.py CONFIG_JSON", file=sys.stderr)
        return 2
    o = {"epochs": 1, "dpo_sft_weight": 0.0, "filter_equal_groups": False, "gamma": 1.0, "lam": 0.95, "value_coefficient": 0.5, "value_clip": 0.2, "shuffle_rewards": False}
    o.update(json.loads(sys.argv[1]))
    torch.set_num_threads(o["threads"])
    torch.manual_seed(o["seed"])
    rng = random.Random(o["seed"])
    sampling = torch.Generator().manual_seed(o["seed"])
    tokenizer = CharTokenizer(o["checkpoint"])
    config, weights = load_checkpoint(o["checkpoint"])
    policy = Reference(config, {k: v.clone() for k, v in weights.items() if not k.startswith("value_head")})
    reference = Reference(config, weights)
    params = list(policy.w.values())
    value_head = None
    if o["algorithm"] == "ppo":
        # The critic: a linear head on the final hidden state, N(0, 0.02) weight and zero bias as OnlineRl's.
        value_head = {"weight": torch.randn(1, config["hidden_size"]) * 0.02, "bias": torch.zeros(1)}
        params += list(value_head.values())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=o["learning_rate"], weight_decay=0.0)
    with open(o["heldout"]) as f:
        heldout = [json.loads(line) for line in f if line.strip()]

    rows = []
    trained_seconds = 0.0

    def record(update, reward=float("nan"), loss=float("nan"), kl=float("nan")):
        acc = accuracy(policy, tokenizer, heldout, o["max_new_tokens"])
        rows.append({"update": update, "seconds": round(trained_seconds, 2), "heldout_accuracy": acc,
                     "reward_mean": reward, "loss": loss, "kl": kl})
        print(f"[reference {o['algorithm']}] update {update} {trained_seconds:.0f}s held-out {acc:.1%}", file=sys.stderr, flush=True)
        return acc

    initial = record(0)
    update = 0
    last = None
    while update < o["steps"] and trained_seconds < o["seconds"]:
        begin = time.perf_counter()
        problems = [problem(rng, o["max_digits"]) for _ in range(o["prompts_per_step"])]
        completions = generate(policy, [tokenizer.encode(p) for p, _ in problems], o["group_size"], o["max_new_tokens"],
                               o["temperature"], sampling)
        groups = [{"prompt": tokenizer.encode(p), "completions": [
            {"tokens": t, "logprobs": lp, "reward": float(tokenizer.decode(t).strip() == answer)}
            for t, lp in completions[i * o["group_size"]:(i + 1) * o["group_size"]]]} for i, (p, answer) in enumerate(problems)]
        ids, mask, _, rewards = build_batch(groups)
        reward_mean = float(rewards.mean())
        if o["shuffle_rewards"]:
            rewards = rewards.reshape(-1)[torch.randperm(rewards.numel(), generator=sampling)].reshape(rewards.shape)
        update += 1
        rate = o["learning_rate"] * min(1.0, update / max(1, o["warmup_steps"]))
        for group in optimizer.param_groups:
            group["lr"] = rate
        loss_value, kl_value = float("nan"), float("nan")
        with torch.no_grad():
            reference_lp = token_log_probs(reference, ids, o["temperature"])
            old = token_log_probs(policy, ids, o["temperature"])
        if o["algorithm"] == "grpo":
            kept = torch.arange(rewards.shape[0])
            if o["filter_equal_groups"]:
                kept = (rewards.max(1).values > rewards.min(1).values).nonzero().squeeze(1)
            g = o["group_size"]
            kept_rows = (kept[:, None] * g + torch.arange(g)).reshape(-1)
            for _ in range(o["epochs"] if len(kept) > 0 else 0):
                loss, kl = grpo_loss(policy, reference_lp[kept_rows], ids[kept_rows], mask[kept_rows], rewards[kept], old[kept_rows], o)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                loss_value, kl_value = float(loss), float(kl)
        elif o["algorithm"] == "ppo":
            with torch.no_grad():
                old_values = F.linear(policy.hidden(ids), value_head["weight"], value_head["bias"]).squeeze(-1)[:, :-1]
                kl_tokens = (old - reference_lp) * mask
                token_rewards = -o["kl_beta"] * kl_tokens
                last_token = (mask * torch.arange(1, mask.shape[1] + 1)).argmax(1)
                token_rewards[torch.arange(ids.shape[0]), last_token] += rewards.reshape(-1)
                advantages, returns = gae(token_rewards, old_values, mask, o["gamma"], o["lam"])
                mean = masked_mean(advantages, mask)
                var = ((advantages - mean) ** 2 * mask).sum() / (mask.sum() - 1)
                advantages = (advantages - mean) * torch.rsqrt(var + 1e-8) * mask
            for _ in range(o["epochs"]):
                loss, _ = ppo_losses(policy, value_head, ids, mask, old, old_values, advantages, returns, o)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                loss_value, kl_value = float(loss), float(masked_mean(kl_tokens, mask))
        else:
            pairs = dpo_pairs(rewards)
            if pairs:
                chosen = torch.tensor([c for c, _ in pairs])
                rejected = torch.tensor([r for _, r in pairs])
                for _ in range(o["epochs"]):
                    sequence = (token_log_probs(policy, ids, o["temperature"]) * mask).sum(1)
                    sequence_ref = (reference_lp * mask).sum(1)
                    logits = (sequence[chosen] - sequence[rejected]) - (sequence_ref[chosen] - sequence_ref[rejected])
                    loss = -F.logsigmoid(o["dpo_beta"] * logits).mean()
                    if o["dpo_sft_weight"] > 0:
                        loss = loss + o["dpo_sft_weight"] * (-sequence[chosen] / mask[chosen].sum(1).clamp(min=1)).mean()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    loss_value = float(loss)
        trained_seconds += time.perf_counter() - begin
        last = (reward_mean, loss_value, kl_value)
        if o["eval_every"] > 0 and update % o["eval_every"] == 0:
            record(update, *last)
    if not rows or rows[-1]["update"] != update:
        record(update, *(last or ()))
    with open(o["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    print(json.dumps({"initial": initial, "final": rows[-1]["heldout_accuracy"], "updates": update, "seconds": trained_seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
