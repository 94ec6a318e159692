"""A/B in one process: treeattn's C++ attention kernel against the PyTorch path it replaces.

Times (thread CPU time at one thread, medians of interleaved runs) the level-1 attention alone
(fwd + bwd, 16 and 64 windows of 256 tokens, q/k head dim 15, v head dim 30, learnable bias) with
``sdpa_with_bias_grad`` (old) and the ``treeattn::biased_attention`` operator (new), then
``HiIRLayer(180, 6, (16, 64))`` fwd + bwd with the old ``auto`` rule (math for small windows, SDPA
otherwise) and the new one (the C++ kernel for large windows), against ``SwinLayer(180, 6, 8)``.

Usage: python benchmarks/ab_cpu_kernel.py [--threads 1] [--sizes 64 128] [--repeats 4]
"""

from __future__ import annotations

import argparse
import time

import torch
from benchlib import abba_medians
from einops import rearrange

from treeattn import HiIRLayer, SwinLayer
from treeattn.ops.attention import SMALL_WINDOW_TOKENS, attention_math, attention_sdpa
from treeattn.ops.biased_sdpa import sdpa_with_bias_grad
from treeattn.ops.cpu_attention import biased_attention
from treeattn.ops.cpu_kernel import kernel_available, load_cpu_kernel


def old_auto(q, k, v, bias, scale):
    """``auto`` before the C++ kernel: math for small CPU windows, SDPA otherwise."""
    if q.device.type == "cpu" and q.shape[-2] <= SMALL_WINDOW_TOKENS:
        return attention_math(q, k, v, bias, scale)
    return attention_sdpa(q, k, v, bias, scale)


def attention_runs(windows: int, tokens: int, kernels: dict, *, projection: bool = False) -> dict:
    """fwd + bwd of each kernel on the same ``windows`` windows of ``tokens`` tokens, 6 heads
    (q/k 15, v 30 wide) and a learnable bias: q, k and v contiguous each, or with ``projection``
    views of one ``(windows, tokens, 360)`` projection, heads side by side in each row, as the
    layers give them (the split and the gradients' concatenation then run in both)."""
    torch.manual_seed(0)
    bias = torch.randn(1, 6, tokens, tokens, requires_grad=True)
    grad = torch.randn(windows, 6, tokens, 30)
    if projection:
        proj = torch.randn(windows, tokens, 360, requires_grad=True)

        def inputs():
            return (
                rearrange(t, "n t (h d) -> n h t d", h=6) for t in proj.split((90, 90, 180), -1)
            )

        wrt = (proj, bias)
    else:
        q, k = (torch.randn(windows, 6, tokens, 15, requires_grad=True) for _ in range(2))
        v = torch.randn(windows, 6, tokens, 30, requires_grad=True)

        def inputs():
            return q, k, v

        wrt = (q, k, v, bias)

    def run(fn):
        return lambda: torch.autograd.grad(fn(*inputs(), bias, 15**-0.5), wrt, grad)

    return {name: run(fn) for name, fn in kernels.items()}


def kernel_runs(windows: int) -> dict:
    return attention_runs(windows, 256, {"old": sdpa_with_bias_grad, "new": biased_attention})


def layer_runs(size: int) -> dict:
    torch.manual_seed(0)
    new = HiIRLayer(180, 6, (16, 64))
    old = HiIRLayer(180, 6, (16, 64))
    old.load_state_dict(new.state_dict())
    for module in old.modules():
        if hasattr(module, "kernel"):
            module.kernel = old_auto
    swin = SwinLayer(180, 6, 8)
    x = torch.randn(1, 180, size, size)

    def run(layer):
        return lambda: layer(x).sum().backward()

    return {"old": run(old), "new": run(new), "swin": run(swin)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--windows", type=int, nargs="*", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    if load_cpu_kernel() is None or not kernel_available():
        raise SystemExit("the C++ kernel could not be built here; nothing to compare")
    for windows in args.windows:
        med = abba_medians(kernel_runs(windows), repeats=args.repeats + 2, clock=clock)
        print(
            f"attention fwd+bwd, {windows} windows of 256 tokens: old {med['old'] * 1e3:.1f} ms, "
            f"new {med['new'] * 1e3:.1f} ms, new/old {med['new'] / med['old']:.3f}",
            flush=True,
        )
    for size in args.sizes:
        med = abba_medians(layer_runs(size), repeats=args.repeats, clock=clock)
        print(
            f"HiIRLayer fwd+bwd {size}²: old {med['old'] * 1e3:.0f} ms, new {med['new'] * 1e3:.0f}"
            f" ms, SwinLayer {med['swin'] * 1e3:.0f} ms; Hi-IR/Swin old "
            f"{med['old'] / med['swin']:.3f} → new {med['new'] / med['swin']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
