#!/usr/bin/python3
"""Reference side of `onlinerl-bench bench`: the same workloads as BenchCommand.cs, written the way a
PyTorch user would write them, on /usr/bin/python3's torch (Debian's 1.13, with OpenBLAS).

Run by the bench command as a subprocess so that both sides can be timed in alternating blocks
(which cancels most of the drift of a shared machine):

    reference.py CONFIG_JSON

CONFIG_JSON: {"threads": int, "inplace_n": int, "matmul_n": int, "mlp": {"inputs", "hidden", "layers", "classes", "batch"}}.
Protocol, one JSON object per line:
  stdout at start:  {"torch_version", "threads", "libtorch"}
  stdin  request:   {"workload": NAME, "count": N}   -> stdout {"seconds": wall time of N iterations}
  stdin  request:   {"quit": true} (or end of input)  -> exit
Errors go to stderr with a non-zero exit code.
"""

import json
import sys
import time


def mapped_libtorch():
    """The libtorch_cpu this process mapped, to show both sides use the same library."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                if len(fields) >= 6 and "libtorch_cpu" in fields[-1]:
                    return fields[-1]
    except OSError:
        pass
    return None


def build_workloads(config, torch, F):
    """NAME -> function(n) running n iterations (the loop a user would write)."""
    torch.manual_seed(0)
    a1, b1 = torch.rand(1), torch.rand(1)
    a16, b16 = torch.rand(16), torch.rand(16)
    x8, w8 = torch.rand(8, 8), torch.rand(8, 8)
    big_a, big_b = torch.rand(config["inplace_n"]), torch.rand(config["inplace_n"])
    n = config["matmul_n"]
    ma, mb = torch.rand(n, n), torch.rand(n, n)

    mlp = config["mlp"]
    sizes = [mlp["inputs"]] + [mlp["hidden"]] * mlp["layers"] + [mlp["classes"]]
    layers = [torch.nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
    params = [p for layer in layers for p in layer.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, foreach=False)
    inputs = torch.randn(mlp["batch"], mlp["inputs"])
    targets = torch.randint(0, mlp["classes"], (mlp["batch"],))

    def add_1(count):
        for _ in range(count):
            r = a1 + b1
        return r

    def add_16(count):
        for _ in range(count):
            r = a16 + b16
        return r

    def matmul_8(count):
        for _ in range(count):
            r = x8.matmul(w8)
        return r

    def sum_16(count):
        for _ in range(count):
            r = a16.sum()
        return r

    def dim_1(count):
        d = 0
        for _ in range(count):
            d += a1.dim()
        return d

    accumulator = torch.zeros(1)

    def add_1_inplace(count):
        for _ in range(count):
            accumulator.add_(b1)

    def add_inplace(count):
        for _ in range(count):
            big_a.add_(big_b)

    def matmul_big(count):
        for _ in range(count):
            r = ma.matmul(mb)
        return r

    def mlp_step(count):
        loss = None
        for _ in range(count):
            optimizer.zero_grad(set_to_none=True)
            h = inputs
            for layer in layers[:-1]:
                h = F.relu(layer(h))
            loss = F.cross_entropy(layers[-1](h), targets)
            loss.backward()
            optimizer.step()
        if loss is not None and not torch.isfinite(loss).item():
            raise RuntimeError(f"MLP benchmark produced a non-finite loss ({loss.item()})")

    return {
        "add_1": add_1,
        # Python has no dispose scopes: the C# scope row is compared with the same plain a + b loop.
        "add_1_scope": add_1,
        # Python frees a result when its last reference goes: the undisposed C# row is compared with a + b too.
        "add_1_undisposed": add_1,
        "dim_1": dim_1,
        "add_1_inplace": add_1_inplace,
        "add_16": add_16,
        "matmul_8": matmul_8,
        "sum_16": sum_16,
        "add_inplace": add_inplace,
        "matmul_big": matmul_big,
        "mlp_step": mlp_step,
    }


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main():
    if len(sys.argv) != 2:
        print("usage: reference.py CONFIG_JSON", file=sys.stderr)
        return 2
    config = json.loads(sys.argv[1])
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(config["threads"])
    workloads = build_workloads(config, torch, F)
    send({"torch_version": torch.__version__, "threads": torch.get_num_threads(), "libtorch": mapped_libtorch()})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        run = workloads[request["workload"]]
        count = int(request["count"])
        start = time.perf_counter()
        run(count)
        send({"seconds": time.perf_counter() - start})
    return 0


if __name__ == "__main__":
    sys.exit(main())
