"""Speed and memory of one HiIRLayer against Swin-style window layers (not a test).

HiIRLayer (p=16, P=64) is compared with the in-project :class:`~treeattn.layers.SwinLayer` at the
same width and heads, with window 8 (Swin's default) and window 64 (the same receptive field as a
Hi-IR region), at 64², 128² and 256², C=180, h=6. Layers are timed in one process, alternating
A/B/C each round; medians and ratios are reported (and, for HiIR against Swin window 8, the
quartiles of the per-round ratio, which a drift of the machine's speed does not move), plus each
layer's MACs (the algorithm's: ``math`` backend, :func:`treeattn.analysis.count_macs`), the
per-MAC ratio (time ratio ÷ MAC ratio; below 1 a layer does a MAC faster than HiIR), peak
activation memory (live tensor storages, see :mod:`treeattn.analysis.memory`, measured during the
warm-up run) and the machine load seen.
On a shared 2-core machine, ``--threads 1`` avoids the large slow-downs two torch threads suffer
when another process holds a core. ``--keep-freed-memory`` times both layers with glibc keeping
freed memory, as treeattn's recipes run (:func:`treeattn.allocator.keep_freed_memory`): without it
every fresh map of a step is faulted in page by page, which costs HiIRLayer, with more and larger
temporaries, more than SwinLayer.

Usage::

    python benchmarks/layer_bench.py                 # full table, JSON in benchmarks/results/
    python benchmarks/layer_bench.py --sizes 64 --repeats 2 --threads 1
    python benchmarks/layer_bench.py --sizes 64 128 --keep-freed-memory   # as the recipes run
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from benchlib import (
    add_keep_freed_memory,
    apply_keep_freed_memory,
    count_forward_macs,
    machine_meta,
    paired_ratios,
    report_load,
    save_results,
)

from treeattn.analysis.memory import LiveTensorTracker
from treeattn.layers import HiIRLayer, SwinLayer

LAYERS = {
    "hiir_p16_P64": lambda c, h, **kw: HiIRLayer(c, h, (16, 64), **kw),
    "swin_w8": lambda c, h, **kw: SwinLayer(c, h, 8, **kw),
    "swin_w64": lambda c, h, **kw: SwinLayer(c, h, 64, **kw),
}


def run_once(layer: torch.nn.Module, x: torch.Tensor, *, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        layer(x).square().mean().backward()
    else:
        with torch.no_grad():
            layer(x)
    return time.perf_counter() - start


def peak_memory(layer: torch.nn.Module, x: torch.Tensor, *, backward: bool) -> int:
    tracker = LiveTensorTracker(ignore=[x, *layer.parameters(), *layer.buffers()])
    with tracker:
        if backward:
            layer(x).square().mean().backward()
        else:
            with torch.no_grad():
                layer(x)
    layer.zero_grad(set_to_none=True)
    return tracker.peak


def bench_size(size: int, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    layers = {name: make(args.dim, args.heads, data_format="BHWC") for name, make in LAYERS.items()}
    x = torch.randn(1, size, size, args.dim)
    rows: dict[str, dict] = {name: {} for name in layers}
    for backward in (False, True):
        mode = "fwd_bwd" if backward else "fwd"
        times: dict[str, list[float]] = {name: [] for name in layers}
        slow = set()
        for name, layer in layers.items():  # warm-up, which also measures peak memory
            start = time.perf_counter()
            if args.no_memory:
                run_once(layer, x, backward=backward)
            else:
                rows[name][f"{mode}_peak_mib"] = peak_memory(layer, x, backward=backward) / 2**20
            layer.zero_grad(set_to_none=True)
            # One timed run is plenty for multi-second runs. The first run of a process can pay
            # one-time costs (the first custom-operator call under autograd imports
            # torch._dynamo: seconds), so a slow one is asked again.
            if time.perf_counter() - start > args.slow_seconds:
                if run_once(layer, x, backward=backward) > args.slow_seconds:
                    slow.add(name)
                layer.zero_grad(set_to_none=True)
        for round_ in range(args.repeats):
            for name, layer in layers.items():  # alternate the layers every round
                if name in slow and round_ > 0:
                    continue
                times[name].append(run_once(layer, x, backward=backward))
                layer.zero_grad(set_to_none=True)
        for name in layers:
            rows[name][f"{mode}_s"] = statistics.median(times[name])
            rows[name][f"{mode}_runs"] = len(times[name])
            if name not in slow and "hiir_p16_P64" not in slow:
                rows[name][f"{mode}_paired_vs_hiir"] = paired_ratios(
                    times[name], times["hiir_p16_P64"]
                )
    for name, make in LAYERS.items():
        build = partial(make, args.dim, args.heads, backend="math")
        rows[name]["macs"] = count_forward_macs(build, size, in_chans=args.dim)
    base = rows["hiir_p16_P64"]
    for row in rows.values():
        for mode in ("fwd", "fwd_bwd"):
            row[f"{mode}_ratio_vs_hiir"] = row[f"{mode}_s"] / base[f"{mode}_s"]
            mac_ratio = row["macs"] / base["macs"]
            row[f"{mode}_per_mac_vs_hiir"] = row[f"{mode}_ratio_vs_hiir"] / mac_ratio
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--dim", type=int, default=180)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory tracking")
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=3.0,
        help="layers whose warm-up takes longer are timed once",
    )
    add_keep_freed_memory(parser)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = apply_keep_freed_memory(args)
    load_before = os.getloadavg()[0]
    results = {str(size): bench_size(size, args) for size in args.sizes}
    meta = {**machine_meta(load_before), "dim": args.dim, "heads": args.heads}
    meta["keep_freed_memory"] = kept
    report_load(meta, "times: median seconds; ratio = layer / HiIR, /MAC = per-MAC ratio")
    header = (
        f"{'size':>5} {'layer':<14} {'GMAC':>6} {'fwd s':>8} {'ratio':>6} {'/MAC':>5} "
        f"{'fwd+bwd s':>10} {'ratio':>6} {'/MAC':>5}"
    )
    if not args.no_memory:
        header += f" {'fwd MiB':>9} {'train MiB':>10}"
    print(header)
    for size, rows in results.items():
        for name, r in rows.items():
            line = (
                f"{size:>5} {name:<14} {r['macs'] / 1e9:>6.2f} {r['fwd_s']:>8.3f} "
                f"{r['fwd_ratio_vs_hiir']:>6.2f} {r['fwd_per_mac_vs_hiir']:>5.2f} "
                f"{r['fwd_bwd_s']:>10.3f} {r['fwd_bwd_ratio_vs_hiir']:>6.2f} "
                f"{r['fwd_bwd_per_mac_vs_hiir']:>5.2f}"
            )
            if not args.no_memory:
                line += f" {r['fwd_peak_mib']:>9.1f} {r['fwd_bwd_peak_mib']:>10.1f}"
            print(line)
        swin = rows["swin_w8"].get("fwd_bwd_paired_vs_hiir")
        if swin:  # HiIR / Swin per round, the ratio (the inverse of the columns above)
            print(
                f"{size:>5} HiIR / swin_w8 fwd+bwd, per round: median {1 / swin['median']:.3f}, "
                f"quartiles {1 / swin['q3']:.3f}–{1 / swin['q1']:.3f}"
            )
    save_results(args.out, "layer_bench", meta, results)


if __name__ == "__main__":
    main()
