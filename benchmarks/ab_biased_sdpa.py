"""A/B in one process: attention fwd+bwd and HiIRLayer fwd+bwd with another checkout's biased_sdpa.

Usage (from this checkout): python benchmarks/ab_biased_sdpa.py THREADS [OLD_biased_sdpa.py]
"""

import importlib.util
import statistics
import sys
import time

import torch

import treeattn.ops.attention as att
from treeattn import HiIRLayer, SwinLayer

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


old = load(
    sys.argv[2] if len(sys.argv) > 2 else "../main/treeattn/ops/biased_sdpa.py", "old_biased"
)
new = load("treeattn/ops/biased_sdpa.py", "new_biased")
clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter


def kernel_case(mod, q, k, v, b, g):
    out = mod.sdpa_with_bias_grad(q, k, v, b, 15**-0.5)
    torch.autograd.grad(out, (q, k, v, b), g)


torch.manual_seed(0)
for windows in (16, 64):
    q, k = (torch.randn(windows, 6, 256, 15, requires_grad=True) for _ in range(2))
    v = torch.randn(windows, 6, 256, 30, requires_grad=True)
    b = torch.randn(1, 6, 256, 256, requires_grad=True)
    g = torch.randn(windows, 6, 256, 30)
    times = {"old": [], "new": []}
    for mod in (old, new):
        kernel_case(mod, q, k, v, b, g)
    for rep in range(6):
        for name in ("old", "new") if rep % 2 == 0 else ("new", "old"):
            mod = old if name == "old" else new
            t = clock()
            kernel_case(mod, q, k, v, b, g)
            times[name].append(clock() - t)
    o, n = statistics.median(times["old"]), statistics.median(times["new"])
    print(
        f"attention fwd+bwd, {windows} windows of 256 tokens: old {o * 1e3:.1f} ms, "
        f"new {n * 1e3:.1f} ms, new/old {n / o:.3f}"
    )

# whole layer: swap the kernel module used by treeattn.ops.attention
layer = HiIRLayer(180, 6, (16, 64), backend="sdpa")  # the path biased_sdpa serves
swin = SwinLayer(180, 6, 8)
for size in (64, 128):
    x = torch.randn(1, 180, size, size)
    times = {"old": [], "new": [], "swin": []}

    def run(name, x=x):
        if name == "swin":
            m = swin
        else:
            att.sdpa_with_bias_grad = (old if name == "old" else new).sdpa_with_bias_grad
            m = layer
        t = clock()
        m(x).sum().backward()
        return clock() - t

    for name in times:
        run(name)
    for rep in range(4):
        order = ("old", "new", "swin") if rep % 2 == 0 else ("swin", "new", "old")
        for name in order:
            times[name].append(run(name))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"layer fwd+bwd {size}²: old {med['old'] * 1e3:.0f} ms, new {med['new'] * 1e3:.0f} ms, "
        f"swin {med['swin'] * 1e3:.0f} ms; "
        f"Hi-IR/Swin old {med['old'] / med['swin']:.3f} new {med['new'] / med['swin']:.3f}"
    )
