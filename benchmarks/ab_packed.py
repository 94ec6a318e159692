"""A/B in one process: tree attention's q/k/v projection handed to the attention whole or split.

``packed`` — :func:`treeattn.ops.attention.attend_packed` as the layers call it: in eager CPU
training the packed C++ operator, whose backward writes the gradients of q, k and v into one
buffer (and which runs every window size, level 2's 16 tokens included, through the C++ kernel);
``split`` — the projection split into q, k, v views first, as before: the backend's kernel (explicit
math up to 32 tokens under ``auto``, the C++ kernel above), and autograd concatenating the three
gradients. ``HiIRLayer(180, 6, (16, 64))`` fwd + bwd at 64² and 128², channels-last, with
``SwinLayer(180, 6, 8)`` for the Hi-IR / Swin ratio of issue #11's goal. Freed memory is kept
(:func:`treeattn.allocator.keep_freed_memory`, as in the recipes). One thread: CPU time of the
thread; more: wall time. Writes ``benchmarks/results/ab_packed_t<THREADS>.json``.

Usage::

    python benchmarks/ab_packed.py [--threads 1] [--repeats 9] [--sizes 64 128]
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from pathlib import Path

import torch
from benchlib import abba_medians, machine_meta, save_results

import treeattn.layers.attention as layer_attention
from treeattn import HiIRLayer, SwinLayer
from treeattn.allocator import keep_freed_memory
from treeattn.ops.cpu_attention import split_packed
from treeattn.ops.cpu_kernel import kernel_available


def attend_split(kernel, qkv, bias, scale, *, heads, qk_dim):
    """The projection split before the attention (the code before the packed operator)."""
    return kernel(*split_packed(qkv, heads, qk_dim), bias, scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    args = parser.parse_args()
    if os.environ.get("TREEATTN_ATTN_BACKEND"):
        raise SystemExit("unset TREEATTN_ATTN_BACKEND: it overrides the backends compared here")
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    print(f"C++ kernel built here: {kernel_available()}; threads {args.threads}")
    torch.manual_seed(0)
    hiir = HiIRLayer(180, 6, (16, 64), data_format="BHWC")
    swin = SwinLayer(180, 6, 8, data_format="BHWC")
    attend = {"packed": layer_attention.attend_packed, "split": attend_split}
    load_before = os.getloadavg()[0]
    results = {}
    try:
        for size in args.sizes:
            x = torch.randn(1, size, size, 180)

            def step(name: str, x: torch.Tensor = x) -> None:
                layer = swin if name == "swin" else hiir
                layer_attention.attend_packed = attend.get(name, attend["packed"])
                layer(x).square().mean().backward()
                layer.zero_grad(set_to_none=True)

            med = abba_medians(
                {name: partial(step, name) for name in ("packed", "split", "swin")},
                repeats=args.repeats,
                clock=clock,
            )
            results[f"{size}²"] = med
            print(
                f"{size}²: HiIRLayer packed {med['packed'] * 1e3:.1f} ms, split "
                f"{med['split'] * 1e3:.1f} ms (packed / split {med['packed'] / med['split']:.3f}); "
                f"SwinLayer {med['swin'] * 1e3:.1f} ms; Hi-IR / Swin packed "
                f"{med['packed'] / med['swin']:.3f}, split {med['split'] / med['swin']:.3f}"
            )
    finally:
        layer_attention.attend_packed = attend["packed"]
    meta = {
        **machine_meta(load_before),
        "repeats": args.repeats,
        "kernel_built": kernel_available(),
    }
    out = Path(__file__).parent / "results"
    save_results(out, f"ab_packed_t{args.threads}", meta, results)


if __name__ == "__main__":
    main()
