"""Where a layer's training step goes: every operator's wall time, timed one call at a time.

``torch.profiler`` charges an operator with whatever its thread did while the operator was open;
on this project's CPUs it charged the gate kernel's backward up to 3× the time its call takes. This
script instead runs ``HiIRLayer(C, h, (16, 64))`` and ``SwinLayer(C, h, 8)`` fwd + bwd under a
``TorchDispatchMode`` that times each operator call alone (ATen operators and treeattn's own
``treeattn::*`` ones, forward and backward), and reports per step: the step without the mode,
the GEMMs (``mm``, ``addmm``; the batched ``bmm`` counts among the others), treeattn's kernels,
the other operators, and what is left — Python, autograd and dispatch between the operators.
Each GEMM call is also filed under its operands' shapes (a ``ᵀ`` marks an operand laid out
column-major), with its rate in GMAC/s: which products run slowly for their size.
The two layers take turns step by step, each step once plain and once timed. Freed memory is
kept, as the recipes train (:func:`treeattn.allocator.keep_freed_memory`).

Usage::

    python benchmarks/op_times.py --threads 1 --size 64 [--steps 10] [--top 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
from benchlib import machine_meta, report_load, save_results
from torch.utils._python_dispatch import TorchDispatchMode

from treeattn.allocator import keep_freed_memory
from treeattn.layers import HiIRLayer, SwinLayer

GEMMS = ("aten.mm", "aten.addmm")


def gemm_shape(a: torch.Tensor, b: torch.Tensor) -> str:
    """``"[M, K]ᵀ × [K, N]"``: the operands' shapes, ``ᵀ`` on one laid out column-major."""

    def operand(t: torch.Tensor) -> str:
        column_major = t.layout == torch.strided and t.stride(0) == 1 and t.shape[1] > 1
        return f"[{t.shape[0]}, {t.shape[1]}]" + ("ᵀ" if column_major else "")

    return f"{operand(a)} × {operand(b)}"


class OpTimer(TorchDispatchMode):
    """Adds each operator call's wall time (and count) under the operator's name, and each GEMM's
    under its shape too (with its multiply-adds)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.gemm_seconds: dict[str, float] = defaultdict(float)
        self.gemm_calls: dict[str, int] = defaultdict(int)
        self.gemm_macs: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        seconds = time.perf_counter() - start
        name = str(func.overloadpacket)
        self.seconds[name] += seconds
        self.calls[name] += 1
        if name in GEMMS:
            a, b = args[-2:]  # mm(a, b), addmm(bias, a, b)
            shape = gemm_shape(a, b)
            self.gemm_seconds[shape] += seconds
            self.gemm_calls[shape] += 1
            self.gemm_macs[shape] = a.shape[0] * a.shape[1] * b.shape[1]
        return out


def step(layer: torch.nn.Module, x: torch.Tensor) -> None:
    layer(x).square().mean().backward()
    layer.zero_grad(set_to_none=True)


def compare(layers: dict[str, torch.nn.Module], x: torch.Tensor, steps: int) -> dict:
    """Milliseconds per step of each layer: the plain step (median), then each operator's share
    under an :class:`OpTimer`. The layers take turns step by step (order alternating each round),
    so a drift of the machine's speed touches both alike."""
    for layer in layers.values():
        for _ in range(3):
            step(layer, x)
    names = list(layers)
    plain: dict[str, list[float]] = {name: [] for name in names}
    timed = dict.fromkeys(names, 0.0)
    timers = {name: OpTimer() for name in names}
    for round_ in range(steps):
        for name in names if round_ % 2 == 0 else reversed(names):
            start = time.perf_counter()
            step(layers[name], x)
            plain[name].append(time.perf_counter() - start)
            with timers[name]:
                start = time.perf_counter()
                step(layers[name], x)
                timed[name] += time.perf_counter() - start
    return {
        name: summary(statistics.median(plain[name]), timed[name] / steps, timers[name], steps)
        for name in names
    }


def summary(plain: float, timed: float, timer: OpTimer, steps: int) -> dict:
    """One layer's row: seconds per step in, milliseconds per step out."""
    ops = {name: s / steps * 1e3 for name, s in timer.seconds.items()}
    groups = {
        "gemm_ms": sum(ops.get(name, 0.0) for name in GEMMS),
        "treeattn_ms": sum(ms for name, ms in ops.items() if name.startswith("treeattn.")),
    }
    groups["other_ops_ms"] = sum(ops.values()) - groups["gemm_ms"] - groups["treeattn_ms"]
    gemms = {
        shape: {
            "ms": seconds / steps * 1e3,
            "calls_per_step": timer.gemm_calls[shape] / steps,
            "gmac_per_s": timer.gemm_macs[shape]
            * timer.gemm_calls[shape]
            / max(seconds, 1e-12)
            / 1e9,
        }
        for shape, seconds in sorted(timer.gemm_seconds.items(), key=lambda kv: -kv[1])
    }
    return {
        "step_ms": plain * 1e3,
        "step_under_timer_ms": timed * 1e3,
        **groups,
        "between_ops_ms": timed * 1e3 - sum(ops.values()),
        "ops_ms": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
        "calls_per_step": {name: timer.calls[name] / steps for name in ops},
        "gemm_shapes": gemms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dim", type=int, default=180)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top", type=int, default=12, help="operators listed per layer")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = keep_freed_memory()
    load_before = os.getloadavg()[0]
    torch.manual_seed(0)
    x = torch.randn(1, args.size, args.size, args.dim)
    layers = {
        "hiir_p16_P64": HiIRLayer(args.dim, args.heads, (16, 64), data_format="BHWC"),
        "swin_w8": SwinLayer(args.dim, args.heads, 8, data_format="BHWC"),
    }
    results = compare(layers, x, args.steps)
    meta = {**machine_meta(load_before), "size": args.size, "dim": args.dim, "heads": args.heads}
    meta.update(steps=args.steps, keep_freed_memory=kept)
    report_load(meta, f"ms per fwd + bwd step at {args.size}², each operator timed alone")
    for name, r in results.items():
        print(
            f"{name}: step {r['step_ms']:.1f} (under the timer {r['step_under_timer_ms']:.1f}) = "
            f"GEMMs {r['gemm_ms']:.1f} + treeattn kernels {r['treeattn_ms']:.1f} + other "
            f"operators {r['other_ops_ms']:.1f} + between operators {r['between_ops_ms']:.1f}"
        )
        for op, ms in list(r["ops_ms"].items())[: args.top]:
            print(f"    {op:<44} {ms:7.2f}  ×{r['calls_per_step'][op]:g}")
        print("  GEMMs by shape:")
        for shape, g in list(r["gemm_shapes"].items())[: args.top]:
            print(
                f"    {shape:<44} {g['ms']:7.2f}  ×{g['calls_per_step']:g}  "
                f"{g['gmac_per_s']:5.1f} GMAC/s"
            )
    save_results(args.out, f"op_times_{args.size}_t{torch.get_num_threads()}", meta, results)


if __name__ == "__main__":
    main()
