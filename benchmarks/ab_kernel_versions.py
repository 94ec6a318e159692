"""A/B in one process: this checkout's C++ attention kernel against another checkout's.

Builds ``biased_attention.cpp`` (with its ``vec_math.h``) of an older checkout — e.g. ``git
worktree add --detach ../old HEAD~1`` — with the flags this checkout uses, loads both libraries and
times the kernel alone, forward and backward, on the layers' shapes: a 64² map of 180 channels
cut into windows of 16, 64 and 256 tokens, 6 heads, q/k 15 and v 30 wide, as strided views of one
projection (as the layers call it). Both run through this checkout's Python wrapper
(:class:`treeattn.ops.cpu_kernel.CpuKernel`), so only the C++ differs. One thread: CPU time of the
thread; more: wall time. Writes ``benchmarks/results/ab_kernel_versions_t<THREADS>.json``.

Usage::

    python benchmarks/ab_kernel_versions.py --old-src ../old/treeattn/ops/csrc [--threads 1]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from benchlib import abba_medians, machine_meta, save_results
from einops import rearrange

import treeattn.ops.cpu_kernel as cpu_kernel


def attention_only(path: str) -> cpu_kernel.CpuKernel:
    """A :class:`CpuKernel` over a library that may predate the other kernels: only its
    attention entries are bound (the benchmark calls nothing else)."""
    kernel = object.__new__(cpu_kernel.CpuKernel)
    kernel.path, kernel._forward, kernel._backward = path, {}, {}
    library = ctypes.CDLL(path)
    for table, name, argtypes in (
        (kernel._forward, "attention_forward", cpu_kernel._FORWARD_ARGS),
        (kernel._backward, "attention_backward", cpu_kernel._BACKWARD_ARGS),
    ):
        for dtype, suffix in cpu_kernel._SUFFIX.items():
            function = getattr(library, f"treeattn_{name}_{suffix}")
            function.argtypes, function.restype = argtypes, ctypes.c_int
            table[dtype] = function
    return kernel


def build(csrc: Path, label: str) -> cpu_kernel.CpuKernel:
    """Compile ``csrc``'s attention kernel like :func:`treeattn.ops.cpu_kernel.load_cpu_kernel`."""
    from torch.utils import cpp_extension

    sources = [csrc / "biased_attention.cpp", csrc / "vec_math.h"]
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sources)).hexdigest()[:8]
    work = Path(tempfile.mkdtemp(prefix=f"treeattn_{label}_"))
    for path in sources:
        shutil.copy(path, work / path.name)
    flags = cpu_kernel._FLAG_SETS[0]
    path = cpp_extension.load(
        name=f"treeattn_ab_{label}_{digest}",
        sources=[str(work / "biased_attention.cpp")],
        extra_cflags=flags,
        extra_ldflags=["-fopenmp"],
        is_python_module=False,
        verbose=False,
    )
    return attention_only(path)


def kernel_runs(kernels: dict, tokens: int) -> dict:
    """Forward and backward of each kernel on one 64² map's windows of ``tokens`` tokens."""
    torch.manual_seed(0)
    qkv = torch.randn(4096 // tokens, tokens, 360)
    q, k, v = (rearrange(t, "n t (h d) -> n h t d", h=6) for t in qkv.split((90, 90, 180), -1))
    bias = torch.randn(1, 6, tokens, tokens)
    out, lse = kernels["new"].forward(q, k, v, bias, 15**-0.5)
    grad = torch.randn_like(out)
    runs = {}
    for name, kernel in kernels.items():
        runs[f"{name} fwd"] = lambda kernel=kernel: kernel.forward(q, k, v, bias, 15**-0.5)
        runs[f"{name} bwd"] = lambda kernel=kernel: kernel.backward(
            grad, q, k, v, bias, out, lse, 15**-0.5
        )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", type=Path, required=True, help="another checkout's csrc/")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    kernels = {
        "old": build(args.old_src, "old"),
        "new": build(Path(cpu_kernel.__file__).parent / "csrc", "new"),
    }
    load_before = os.getloadavg()[0]
    results = {}
    for tokens in (16, 64, 256):
        med = abba_medians(kernel_runs(kernels, tokens), repeats=args.repeats, clock=clock)
        results[f"{4096 // tokens} windows x {tokens} tokens"] = med
        parts = []
        for part in ("fwd", "bwd"):
            old, new = med[f"old {part}"], med[f"new {part}"]
            parts.append(f"{part} old {old * 1e3:.2f} → new {new * 1e3:.2f} ms ({new / old:.2f})")
        print(f"{4096 // tokens} windows × {tokens} tokens: " + ", ".join(parts))
    meta = {**machine_meta(load_before), "repeats": args.repeats, "old_src": str(args.old_src)}
    save_results(
        Path(__file__).parent / "results", f"ab_kernel_versions_t{args.threads}", meta, results
    )


if __name__ == "__main__":
    main()
