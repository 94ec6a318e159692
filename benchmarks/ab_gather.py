"""A/B in one process: a continuous position bias, forward + backward, computed plainly and as now.

``plain`` is the textbook path: ``nn.Sequential`` MLP over the coordinates, ``table[index]``
(``index_put`` backward), and the ``(T², heads)`` result copied into the ``(1, heads, T, T)``
layout the attention reads. ``now`` is the module as it is: the MLP's first-layer weight gradient
formed as ``coordsᵀ·grad`` (:meth:`ContinuousPositionBias._mlp`) and the table gathered straight
into the bias's layout (:func:`treeattn.ops.gather.gather_columns`). Both give the same bias and
gradients to the bit (checked before timing).

A 16×16 window (961 offsets, 6 heads, 65,536 gathered entries) — the level-1 bias of
``HiIRLayer(180, 6, (16, 64))`` — interleaved ABBA, medians. One thread: CPU time of the thread;
more: wall time. Writes ``benchmarks/results/ab_gather_t<THREADS>.json``.

Usage::

    python benchmarks/ab_gather.py [THREADS] [REPEATS]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from benchlib import abba_medians, machine_meta, save_results
from einops import rearrange

from treeattn.allocator import keep_freed_memory
from treeattn.layers.pos_bias import ContinuousPositionBias


def plain_bias(module: ContinuousPositionBias) -> torch.Tensor:
    """The bias computed the textbook way (see the module docstring)."""
    table = 16.0 * torch.sigmoid(module.mlp(module.coords))
    return rearrange(table[module.index], "(q k) h -> 1 h q k", q=module.tokens).contiguous()


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    keep_freed_memory()  # as the recipes run
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    torch.manual_seed(0)
    bias = ContinuousPositionBias((16, 16), 6)
    grad = torch.randn(1, 6, 256, 256)
    paths = {"plain": plain_bias, "now": ContinuousPositionBias.__call__}

    def gradients(name: str) -> list[torch.Tensor]:
        out = paths[name](bias)
        return [out, *torch.autograd.grad(out, list(bias.parameters()), grad)]

    for got, want in zip(gradients("now"), gradients("plain"), strict=True):
        if not torch.equal(got, want):
            raise SystemExit("the two paths disagree: nothing timed")

    def run(name: str) -> None:
        paths[name](bias).backward(grad)
        bias.zero_grad(set_to_none=True)

    runs = {name: (lambda name=name: run(name)) for name in paths}
    load_before = os.getloadavg()[0]
    med = {k: t * 1e3 for k, t in abba_medians(runs, repeats=repeats, clock=clock).items()}
    threads = torch.get_num_threads()
    print(
        f"16×16 continuous position bias fwd+bwd, {threads} thread(s): plain "
        f"{med['plain']:.2f} ms, now {med['now']:.2f} ms, now/plain "
        f"{med['now'] / med['plain']:.3f}"
    )
    meta = {**machine_meta(load_before), "threads": threads, "repeats": repeats}
    results = {"median_ms": med, "now_over_plain": med["now"] / med["plain"]}
    save_results(Path(__file__).parent / "results", f"ab_gather_t{threads}", meta, results)


if __name__ == "__main__":
    main()
