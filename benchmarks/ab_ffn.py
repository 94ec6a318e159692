"""A/B in one process: HiIRLayer fwd+bwd with the L3 FFN as it is now and as it was before.

* ``chunked`` — ``value, gate = fc1(x).chunk(2, -1)``: strided halves, so the channels-last
  depthwise conv copies the gate and the backward concatenates the halves' gradients.
* ``two_gemms`` — fc1 as two GEMMs over the weight's halves, the gate as PyTorch operators
  (``value * F.gelu(g)``: GELU, product, and in the backward two products and the GELU gradient).
* ``gate_op`` — two GEMMs, the depthwise conv, then the gate in one pass each way
  (:func:`treeattn.ops.gate.gated_gelu`, the C++ kernel when it is built here).
* ``now`` — :class:`treeattn.layers.ffn.GatedDWConvFFN`: two GEMMs, then the conv and the gate
  together in one pass each way (:func:`treeattn.ops.gate.dwconv_gated_gelu`: the conv's output
  and its gradient are never maps).

``SwinLayer(180, 6, 8)`` gives the Hi-IR / Swin ratio of issue #11's training-step goal. Then
``two_gemms``, ``gate_op`` and ``now`` in the training step (AdamW) of both CPU denoisers, with the
peak activation memory of each (live tensor storages, :mod:`treeattn.analysis.memory`: ``now``
keeps ``value`` and ``gate`` for its backward, ``gate_op`` also the conv's output, PyTorch's
operators also the GELU's output). One thread: CPU time of the thread; more: wall time. Writes
``benchmarks/results/ab_ffn_t<THREADS>.json``.

Usage::

    python benchmarks/ab_ffn.py [THREADS] [REPEATS]
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from ab_small_windows import step_runs
from benchlib import abba_medians, machine_meta, save_results

from treeattn import HiIRLayer, SwinLayer
from treeattn.analysis.memory import LiveTensorTracker
from treeattn.layers.ffn import GatedDWConvFFN
from treeattn.ops.cpu_kernel import kernel_available
from treeattn.ops.gate import gated_gelu


def mix_chunked(self: GatedDWConvFFN, x: torch.Tensor) -> torch.Tensor:
    value, gate = self.fc1(x).chunk(2, dim=-1)
    return self.fc2(value * F.gelu(self.dwconv(gate)))


def mix_two_gemms(self: GatedDWConvFFN, x: torch.Tensor) -> torch.Tensor:
    weights, biases = self.fc1.weight.chunk(2), self.fc1.bias.chunk(2)
    value, gate = (F.linear(x, w, b) for w, b in zip(weights, biases, strict=True))
    return self.fc2(value * F.gelu(self.dwconv(gate)))


def mix_gate_op(self: GatedDWConvFFN, x: torch.Tensor) -> torch.Tensor:
    weights, biases = self.fc1.weight.chunk(2), self.fc1.bias.chunk(2)
    value, gate = (F.linear(x, w, b) for w, b in zip(weights, biases, strict=True))
    return self.fc2(gated_gelu(value, self.dwconv(gate)))


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    mixes = {
        "chunked": mix_chunked,
        "two_gemms": mix_two_gemms,
        "gate_op": mix_gate_op,
        "now": GatedDWConvFFN.mix,
    }
    print(f"gate kernel built here: {kernel_available()}; threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    layer, swin = HiIRLayer(180, 6, (16, 64)), SwinLayer(180, 6, 8)
    load_before = os.getloadavg()[0]
    results: dict[str, dict] = {}
    try:
        for size in (64, 128):
            x = torch.randn(1, 180, size, size)

            def run(name: str, x: torch.Tensor = x) -> None:
                if name != "swin":
                    GatedDWConvFFN.mix = mixes[name]
                (swin if name == "swin" else layer)(x).square().mean().backward()

            runs = {name: partial(run, name) for name in (*mixes, "swin")}
            med = abba_medians(runs, repeats=repeats, clock=clock)
            results[f"HiIRLayer fwd+bwd {size}²"] = med
            print(
                f"HiIRLayer fwd+bwd {size}²: "
                + ", ".join(f"{k} {med[k] * 1e3:.0f} ms" for k in mixes)
                + f"; SwinLayer {med['swin'] * 1e3:.0f} ms; Hi-IR/Swin "
                + ", ".join(f"{k} {med[k] / med['swin']:.3f}" for k in mixes)
                + f"; now/gate_op {med['now'] / med['gate_op']:.3f}"
            )
        for name, step in step_runs().items():
            if name.startswith("SwinLayer"):
                continue

            def under(mix: str, step=step) -> None:
                GatedDWConvFFN.mix = mixes[mix]
                step()

            runs = {mix: partial(under, mix) for mix in ("two_gemms", "gate_op", "now")}
            peak = {}
            for mix, warm_up in runs.items():
                warm_up()  # (AdamW's state exists from here on)
                tracker = LiveTensorTracker(ignore=[])  # counts what the step allocates
                with tracker:
                    warm_up()
                peak[mix] = tracker.peak / 2**20
            med = abba_medians(runs, repeats=repeats, clock=clock, warm_up=False)
            results[f"{name} training step"] = {**med, "peak_activation_mib": peak}
            print(
                f"{name} training step: "
                + ", ".join(f"{k} {med[k] * 1e3:.0f} ms" for k in runs)
                + f", now/gate_op {med['now'] / med['gate_op']:.3f}; peak activation memory "
                + ", ".join(f"{k} {peak[k]:.0f} MiB" for k in runs)
            )
    finally:
        GatedDWConvFFN.mix = mixes["now"]
    meta = {**machine_meta(load_before), "threads": torch.get_num_threads(), "repeats": repeats}
    meta["kernel_built"] = kernel_available()
    out = Path(__file__).parent / "results"
    save_results(out, f"ab_ffn_t{torch.get_num_threads()}", meta, results)


if __name__ == "__main__":
    main()
