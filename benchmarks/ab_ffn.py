"""A/B in one process: HiIRLayer fwd+bwd with fc1 split into two GEMMs (now) or chunked (before).

Before: ``value, gate = fc1(x).chunk(2, -1)`` — strided halves, so the channels-last depthwise conv
copies the gate and the backward concatenates the halves' gradients. Now: two GEMMs over the
weight's halves (:class:`treeattn.layers.ffn.GatedDWConvFFN`). ``SwinLayer(180, 6, 8)`` gives the
Hi-IR / Swin ratio of issue #11's training-step goal. One thread: CPU time of the thread.

Usage::

    python benchmarks/ab_ffn.py [THREADS]
"""

from __future__ import annotations

import statistics
import sys
import time
from functools import partial

import torch
import torch.nn.functional as F
from benchlib import abba_times

from treeattn import HiIRLayer, SwinLayer
from treeattn.layers.ffn import GatedDWConvFFN


def mix_before(self: GatedDWConvFFN, x: torch.Tensor) -> torch.Tensor:
    value, gate = self.fc1(x).chunk(2, dim=-1)
    return self.fc2(value * F.gelu(self.dwconv(gate)))


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    mix_now = GatedDWConvFFN.mix
    torch.manual_seed(0)
    layer, swin = HiIRLayer(180, 6, (16, 64)), SwinLayer(180, 6, 8)
    for size in (64, 128):
        x = torch.randn(1, 180, size, size)

        def run(name: str, x: torch.Tensor = x) -> None:
            GatedDWConvFFN.mix = mix_before if name == "before" else mix_now
            (swin if name == "swin" else layer)(x).square().mean().backward()

        runs = {name: partial(run, name) for name in ("before", "now", "swin")}
        for warm_up in runs.values():
            warm_up()
        times = abba_times(runs, repeats=6, clock=clock)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"HiIRLayer fwd+bwd {size}²: before {med['before'] * 1e3:.0f} ms, "
            f"now {med['now'] * 1e3:.0f} ms, SwinLayer {med['swin'] * 1e3:.0f} ms; Hi-IR/Swin "
            f"before {med['before'] / med['swin']:.3f}, now {med['now'] / med['swin']:.3f}"
        )
    GatedDWConvFFN.mix = mix_now


if __name__ == "__main__":
    main()
