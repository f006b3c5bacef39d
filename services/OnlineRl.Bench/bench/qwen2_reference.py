#!/usr/bin/python3
"""Independent reference for OnlineRl.Model, written directly on PyTorch (Debian's python3-torch, the
same libtorch as the C# binding). Reads/writes safetensors with its own few lines of code (format:
u64 little-endian header length, JSON header, raw data) and runs a Llama/Qwen2 forward pass written
from the papers and Hugging Face's conventions, plus a greedy/sampled generator with its own KV cache.

Commands (JSON on stdout):
  make DIR SEED          write a random small Qwen2-style checkpoint (config.json + model.safetensors)
  forward DIR IDS_JSON   logits for a batch of equal-length id lists: {"logits": [[[...]]]}
  generate DIR JSON      benchmark generation: {"batch", "prompt_len", "new_tokens", "threads"} ->
                         {"seconds", "tokens_per_second", "peak_rss_mb"}
"""
import json, math, struct, sys, time
import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype != torch.bfloat16 else \
            t.contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        buf = bytearray(data[begin:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(buf, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def load_checkpoint(directory):
    config = json.load(open(f"{directory}/config.json"))
    weights = {k: v.float() for k, v in load_safetensors(f"{directory}/model.safetensors").items()}
    return config, weights


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Reference:
    def __init__(self, config, weights):
        self.c, self.w = config, weights
        self.h, self.kv = config["num_attention_heads"], config["num_key_value_heads"]
        self.d = config.get("head_dim", config["hidden_size"] // self.h)
        self.eps = config["rms_norm_eps"]
        inv = 1.0 / (config["rope_theta"] ** (torch.arange(0, self.d, 2, dtype=torch.int64).float() / self.d))
        self.inv_freq = inv

    def lin(self, x, name, bias=False):
        b = self.w.get(name + ".bias") if bias else None
        return torch.nn.functional.linear(x, self.w[name + ".weight"], b)

    def forward(self, ids, cache=None, start=0, positions=None, key_mask=None):
        """ids [B, T]; cache: list of (k, v) per layer or None; returns logits [B, T, V]."""
        x = self.hidden(ids, cache, start, positions, key_mask)
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        return x @ head.t()

    def hidden(self, ids, cache=None, start=0, positions=None, key_mask=None):
        """Final normed hidden states [B, T, C]. positions [B, T] (default start .. start+T-1) and key_mask
        [B, S] (1 for real keys, 0 for left padding; S counts cached keys too) serve left-padded batches."""
        B, T = ids.shape
        x = self.w["model.embed_tokens.weight"][ids]
        if positions is None:
            positions = torch.arange(start, start + T).expand(B, T)
        freqs = positions.float()[..., None] * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        bias = self.c["model_type"] == "qwen2" or self.c.get("attention_bias", False)
        for i in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            hs = rms_norm(x, self.w[p + "input_layernorm.weight"], self.eps)
            q = self.lin(hs, p + "self_attn.q_proj", bias).view(B, T, self.h, self.d).transpose(1, 2)
            k = self.lin(hs, p + "self_attn.k_proj", bias).view(B, T, self.kv, self.d).transpose(1, 2)
            v = self.lin(hs, p + "self_attn.v_proj", bias).view(B, T, self.kv, self.d).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                if cache[i] is not None:
                    k = torch.cat((cache[i][0], k), dim=2)
                    v = torch.cat((cache[i][1], v), dim=2)
                cache[i] = (k, v)
            rep = self.h // self.kv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            S = k.shape[2]
            scores = q @ k.transpose(2, 3) / math.sqrt(self.d)
            blocked = torch.ones(T, S, dtype=torch.bool).triu(S - T + 1)[None, None]
            if key_mask is not None:
                blocked = blocked | (key_mask[:, None, None, :] == 0)
            # The most negative finite value, not -inf: a padding query that sees no key gets a uniform row, not NaN.
            scores = scores.masked_fill(blocked, torch.finfo(scores.dtype).min)
            attn = scores.softmax(-1) @ v
            x = x + self.lin(attn.transpose(1, 2).reshape(B, T, -1), p + "self_attn.o_proj")
            hs = rms_norm(x, self.w[p + "post_attention_layernorm.weight"], self.eps)
            mlp = self.lin(torch.nn.functional.silu(self.lin(hs, p + "mlp.gate_proj")) * self.lin(hs, p + "mlp.up_proj"), p + "mlp.down_proj")
            x = x + mlp
        return rms_norm(x, self.w["model.norm.weight"], self.eps)


def make(directory, seed):
    import os
    os.makedirs(directory, exist_ok=True)
    torch.manual_seed(seed)
    config = {"model_type": "qwen2", "vocab_size": 97, "hidden_size": 64, "intermediate_size": 96,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 10000.0,
              "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "max_position_embeddings": 128, "torch_dtype": "float32"}
    w = {"model.embed_tokens.weight": torch.randn(97, 64) * 0.5, "model.norm.weight": 1 + 0.1 * torch.randn(64)}
    for i in range(2):
        p = f"model.layers.{i}."
        for name, shape in [("self_attn.q_proj", (64, 64)), ("self_attn.k_proj", (32, 64)), ("self_attn.v_proj", (32, 64))]:
            w[p + name + ".weight"] = torch.randn(*shape) * 0.1
            w[p + name + ".bias"] = torch.randn(shape[0]) * 0.1
        w[p + "self_attn.o_proj.weight"] = torch.randn(64, 64) * 0.1
        w[p + "mlp.gate_proj.weight"] = torch.randn(96, 64) * 0.1
        w[p + "mlp.up_proj.weight"] = torch.randn(96, 64) * 0.1
        w[p + "mlp.down_proj.weight"] = torch.randn(64, 96) * 0.1
        w[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(64)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(64)
    json.dump(config, open(f"{directory}/config.json", "w"), indent=2)
    save_safetensors(f"{directory}/model.safetensors", w)
    print(json.dumps({"ok": True}))


def main():
    command = sys.argv[1]
    if command == "make":
        make(sys.argv[2], int(sys.argv[3]))
    elif command == "forward":
        config, weights = load_checkpoint(sys.argv[2])
        ids = torch.tensor(json.loads(sys.argv[3]), dtype=torch.int64)
        with torch.no_grad():
            logits = Reference(config, weights).forward(ids)
        print(json.dumps({"logits": logits.tolist()}))
    elif command == "generate":
        spec = json.loads(sys.argv[3])
        torch.set_num_threads(spec["threads"])
        config, weights = load_checkpoint(sys.argv[2])
        model = Reference(config, weights)
        torch.manual_seed(0)
        ids = torch.randint(0, config["vocab_size"], (spec["batch"], spec["prompt_len"]))
        with torch.no_grad():
            best = float("inf")
            for _ in range(spec.get("repeats", 2)):
                cache = [None] * config["num_hidden_layers"]
                begin = time.perf_counter()
                logits = model.forward(ids, cache, 0)[:, -1]
                pos = ids.shape[1]
                for _ in range(spec["new_tokens"]):
                    probs = torch.softmax(logits.float() / spec.get("temperature", 1.0), dim=-1)
                    nxt = torch.multinomial(probs, 1)
                    logits = model.forward(nxt, cache, pos)[:, -1]
                    pos += 1
                best = min(best, time.perf_counter() - begin)
        total = spec["batch"] * spec["new_tokens"]
        import resource
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": best, "tokens_per_second": total / best, "peak_rss_mb": peak_mb}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
