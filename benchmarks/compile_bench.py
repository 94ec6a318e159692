"""Training step of HiIRLayer and SwinLayer, eager against ``torch.compile`` (not a test).

``HiIRLayer(180, 6, (16, 64))`` and the in-project ``SwinLayer(180, 6, 8)`` (channels-last maps),
each eager and compiled (``--backend``, inductor by default; ``dynamic=False`` unless
``--dynamic``), one forward + backward
of ``layer(x).square().mean()`` per run. The four are timed in one process, alternating the order
every round (:func:`benchlib.abba_times`); medians and the ratios issue 19 asks about are printed:
compiled / eager for each layer, and compiled Hi-IR / compiled Swin against eager Hi-IR / eager
Swin. ``torch._dynamo.explain`` reports each layer's graphs and graph breaks, and the first
compiled call's seconds (compilation) are recorded.

Usage::

    python benchmarks/compile_bench.py --threads 2            # 64² and 128², JSON in results/
    python benchmarks/compile_bench.py --threads 2 --keep-freed-memory   # as the recipes run
    python benchmarks/compile_bench.py --sizes 32 --repeats 2 --dim 24 --heads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from benchlib import (
    abba_times,
    add_keep_freed_memory,
    apply_keep_freed_memory,
    machine_meta,
    report_load,
    save_results,
)
from torch import nn

from treeattn.layers import HiIRLayer, SwinLayer

LAYERS: dict[str, Callable[..., nn.Module]] = {
    "hiir": lambda dim, heads: HiIRLayer(dim, heads, (16, 64), data_format="BHWC"),
    "swin": lambda dim, heads: SwinLayer(dim, heads, 8, data_format="BHWC"),
}


def training_step(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``layer`` on ``x``, gradients dropped after it."""

    def run() -> None:
        layer(x).square().mean().backward()
        layer.zero_grad(set_to_none=True)

    return run


def graph_breaks(layer: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Graphs and graph breaks dynamo finds in the layer's training forward."""
    torch._dynamo.reset()
    explained = torch._dynamo.explain(layer)(x)
    return {"graphs": explained.graph_count, "graph_breaks": explained.graph_break_count}


def bench_size(size: int, args: argparse.Namespace) -> dict:
    """Times, compile seconds, graph counts and ratios at one ``size²``."""
    torch.manual_seed(0)
    x = torch.randn(1, size, size, args.dim)
    layers = {name: make(args.dim, args.heads) for name, make in LAYERS.items()}
    # explained first: dynamo's reset would drop the compiled code of the layers before
    row = {name: graph_breaks(layer, x) for name, layer in layers.items()}
    runs: dict[str, Callable[[], None]] = {}
    for name, layer in layers.items():
        compiled = torch.compile(layer, backend=args.backend, dynamic=args.dynamic)
        start = time.perf_counter()
        training_step(compiled, x)()  # compiles forward and backward
        row[name]["compile_s"] = time.perf_counter() - start
        runs[name] = training_step(layer, x)
        runs[f"{name}+compile"] = training_step(compiled, x)
        runs[name]()  # eager warm-up
    times = abba_times(runs, repeats=args.repeats)
    median = {name: statistics.median(t) for name, t in times.items()}
    for name in LAYERS:
        row[name] |= {
            "eager_s": median[name],
            "compiled_s": median[f"{name}+compile"],
            "compiled_vs_eager": median[f"{name}+compile"] / median[name],
        }
    row["ratios"] = {
        "eager_hiir_vs_swin": median["hiir"] / median["swin"],
        "compiled_hiir_vs_swin": median["hiir+compile"] / median["swin+compile"],
    }
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--dim", type=int, default=180)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--dynamic", action="store_true", help="compile with dynamic shapes (dynamic=True)"
    )
    parser.add_argument(
        "--backend", default="inductor", help="torch.compile backend ('eager': dynamo only)"
    )
    add_keep_freed_memory(parser)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = apply_keep_freed_memory(args)
    load_before = os.getloadavg()[0]
    results = {str(size): bench_size(size, args) for size in args.sizes}
    meta = {
        **machine_meta(load_before),
        "dim": args.dim,
        "heads": args.heads,
        "backend": args.backend,
        "dynamic": args.dynamic,
        "repeats": args.repeats,
        "keep_freed_memory": kept,
    }
    report_load(meta, "training step fwd+bwd, median seconds; ratios of medians")
    print(
        f"{'size':>5} {'layer':<6} {'graphs':>6} {'breaks':>6} {'compile s':>9} "
        f"{'eager s':>8} {'compiled s':>10} {'comp/eager':>10}"
    )
    for size, row in results.items():
        for name in LAYERS:
            r = row[name]
            print(
                f"{size:>5} {name:<6} {r['graphs']:>6} {r['graph_breaks']:>6} "
                f"{r['compile_s']:>9.1f} {r['eager_s']:>8.3f} {r['compiled_s']:>10.3f} "
                f"{r['compiled_vs_eager']:>10.2f}"
            )
        ratios = row["ratios"]
        print(
            f"{size:>5} Hi-IR / Swin: eager {ratios['eager_hiir_vs_swin']:.2f}, "
            f"compiled {ratios['compiled_hiir_vs_swin']:.2f}"
        )
    name = "compile_bench_dynamic" if args.dynamic else "compile_bench"
    save_results(args.out, name, meta, results)


if __name__ == "__main__":
    main()
