"""A/B in alternating processes: training steps with glibc's default malloc thresholds and with
:func:`treeattn.allocator.keep_freed_memory` (what the recipes and ``treeattn restore`` set).

The setting is process-wide, so each measurement is a fresh child process, the two kinds
alternating (ABBA). Each child times, after two warm-up runs, the training step (AdamW) of both CPU
denoisers on their training batches and the fwd + bwd of ``HiIRLayer(180, 6, (16, 64))`` and
``SwinLayer(180, 6, 8)`` at 64² and 128² (channels-last, as ``layer_bench.py``), and counts the
minor page faults per step, and its peak RSS. Reported: the median over children of each child's
median, the keep / default ratio, the Hi-IR / Swin layer ratio under each setting, and the
children's peak RSS. One thread: CPU time of
the thread (page faults included); more: wall time.

Usage::

    python benchmarks/ab_keep_memory.py --threads 1 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from ab_small_windows import step_runs
from benchlib import machine_meta, report_load, save_results

from treeattn import HiIRLayer, SwinLayer
from treeattn.allocator import keep_freed_memory

MODES = ("default", "keep")


def layer_runs() -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    layers = {
        "HiIRLayer": HiIRLayer(180, 6, (16, 64), data_format="BHWC"),
        "SwinLayer": SwinLayer(180, 6, 8, data_format="BHWC"),
    }
    runs = {}
    for size in (64, 128):
        x = torch.randn(1, size, size, 180)
        for name, layer in layers.items():

            def run(layer=layer, x=x) -> None:
                layer(x).square().mean().backward()
                layer.zero_grad(set_to_none=True)

            runs[f"{name} {size}²"] = run
    return runs


def child(mode: str, steps: int) -> dict[str, dict[str, float]]:
    """Medians (s) and page faults per step of every workload, and this process's peak RSS."""
    if mode == "keep" and not keep_freed_memory():
        raise SystemExit("keep_freed_memory() changed nothing here (not glibc?)")
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    runs = {
        name: run for name, run in step_runs().items() if not name.startswith("SwinLayer")
    } | layer_runs()
    out = {}
    for name, run in runs.items():
        run()
        run()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times = []
        for _ in range(steps):
            start = clock()
            run()
            times.append(clock() - start)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        out[name] = {"s": statistics.median(times), "faults": faults / steps}
    out["peak RSS"] = {"MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="children of each kind")
    parser.add_argument("--steps", type=int, default=5, help="timed runs per workload and child")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    load_before = os.getloadavg()[0]
    found: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
            command = [sys.executable, __file__, "--child", mode, "--threads", str(args.threads)]
            command += ["--steps", str(args.steps)]
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            found[mode].append(json.loads(result.stdout.strip().splitlines()[-1]))
    results: dict[str, dict] = {
        "peak RSS MiB": {mode: [c.pop("peak RSS")["MiB"] for c in found[mode]] for mode in MODES}
    }
    for name in found["default"][0]:
        row = {}
        for mode in MODES:
            row[f"{mode}_s"] = statistics.median(c[name]["s"] for c in found[mode])
            row[f"{mode}_faults"] = statistics.median(c[name]["faults"] for c in found[mode])
        row["keep_over_default"] = row["keep_s"] / row["default_s"]
        results[name] = row
    meta = {**machine_meta(load_before), "threads": args.threads, "rounds": args.rounds}
    report_load(meta, f"medians of {args.rounds} processes per setting, ms; faults per step")
    header = ("workload", "default", "keep", "keep/def", "faults def", "keep")
    print("{:<26} {:>9} {:>9} {:>8} {:>10} {:>7}".format(*header))
    for name, r in results.items():
        if name == "peak RSS MiB":
            continue
        print(
            f"{name:<26} {r['default_s'] * 1e3:>9.1f} {r['keep_s'] * 1e3:>9.1f} "
            f"{r['keep_over_default']:>8.3f} {r['default_faults']:>10.0f} {r['keep_faults']:>7.0f}"
        )
    print(
        "peak RSS of the children, MiB: "
        + "; ".join(
            f"{mode} " + ", ".join(f"{x:.0f}" for x in results["peak RSS MiB"][mode])
            for mode in MODES
        )
    )
    for size in (64, 128):
        hiir, swin = results[f"HiIRLayer {size}²"], results[f"SwinLayer {size}²"]
        ratios = {mode: hiir[f"{mode}_s"] / swin[f"{mode}_s"] for mode in MODES}
        results[f"HiIR/Swin {size}²"] = ratios
        shown = ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
        print(f"HiIRLayer / SwinLayer {size}²: {shown}")
    save_results(args.out, f"ab_keep_memory_t{args.threads}", meta, results)


if __name__ == "__main__":
    main()
