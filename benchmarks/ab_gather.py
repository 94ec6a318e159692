"""A/B in one process: a position bias's forward + backward with the table gathered by plain
indexing (``index_put`` backward, before) and by :func:`treeattn.ops.gather.gather_rows` (now).

A 16×16 window's continuous position bias (961 offsets, 6 heads, 65,536 gathered rows) — the
level-1 bias of ``HiIRLayer(180, 6, (16, 64))`` — interleaved ABBA, medians. One thread: CPU time
of the thread; more: wall time. Writes ``benchmarks/results/ab_gather_t<THREADS>.json``.

Usage::

    python benchmarks/ab_gather.py [THREADS] [REPEATS]
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

import torch
from benchlib import abba_medians, machine_meta, save_results

import treeattn.layers.pos_bias as pos_bias


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    gathers = {"plain": lambda table, index, plan: table[index], "now": pos_bias.gather_rows}
    torch.manual_seed(0)
    bias = pos_bias.ContinuousPositionBias((16, 16), 6)
    grad = torch.randn(1, 6, 256, 256)

    def run(name: str) -> None:
        pos_bias.gather_rows = gathers[name]
        bias.zero_grad(set_to_none=True)
        bias().backward(grad)

    runs = {name: partial(run, name) for name in gathers}
    load_before = os.getloadavg()[0]
    try:
        med = {k: t * 1e3 for k, t in abba_medians(runs, repeats=repeats, clock=clock).items()}
    finally:
        pos_bias.gather_rows = gathers["now"]
    print(
        f"16×16 continuous position bias fwd+bwd, {torch.get_num_threads()} thread(s): plain "
        f"{med['plain']:.2f} ms, gather_rows {med['now']:.2f} ms, now/plain "
        f"{med['now'] / med['plain']:.3f}"
    )
    threads = torch.get_num_threads()
    meta = {**machine_meta(load_before), "threads": threads, "repeats": repeats}
    results = {"median_ms": med, "now_over_plain": med["now"] / med["plain"]}
    save_results(Path(__file__).parent / "results", f"ab_gather_t{threads}", meta, results)


if __name__ == "__main__":
    main()
