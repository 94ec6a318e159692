"""Speed and memory of a whole Hi-IR model against the in-project Swin model (not a test).

By default ``hiir_b_sr_x2`` (Hi-IR-B, SR×2) is compared with ``swin_b_sr_x2``: the same columnar
network with Swin layers (window 8) at SwinIR's width and depth (C=180, 6 stages of 6 layers,
6 heads). Both run in one process, ABBA-interleaved (A B, B A, ... each round), for

* ``fwd`` — inference: eval mode, no autograd, large maps band-wise as ``treeattn restore`` runs
  them (:func:`treeattn.ops.bands.band_wise`); ``--bands off`` runs whole maps;
* ``train`` — one training step: forward, L1 loss, backward, AdamW step.

Reported per model and LR size: median seconds, GFLOP/s (2 FLOPs per MAC; a training step
counted as 3× the forward MACs), peak RSS of the warm-up run (the high-water mark is reset before
each run on Linux), the forward cost per pixel relative to the first size, and per size the time
ratio model/peer, the MAC ratio and the per-MAC ratio (time ratio ÷ MAC ratio). MACs are the
algorithm's (``math`` attention backend, whole maps, :func:`treeattn.analysis.count_macs`).
All runs of a mode (every size of both models) are ABBA-interleaved together, and every forward
size runs before the first training step, whose GiBs the allocator keeps. Results go to
``model_bench.json`` (``model_bench_bands_off.json`` with ``--bands off``).

Training at LR 256² needs tens of GB for Hi-IR-B, so ``--train-sizes`` defaults to 64 and 128.
On a shared 2-core machine prefer ``--threads 1`` and compare ratios, not absolute times.

Usage::

    python benchmarks/model_bench.py                       # JSON in benchmarks/results/
    python benchmarks/model_bench.py --threads 1 --sizes 64 --train-sizes 64 --repeats 2
    python benchmarks/model_bench.py --model hiir_sr_tiny_x2 --peer swin_sr_tiny_x2 --sizes 16
    python benchmarks/plot_model_bench.py                  # the figure of docs/performance.md
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from benchlib import (
    abba_times,
    count_forward_macs,
    machine_meta,
    peak_rss,
    report_load,
    save_results,
    summarise,
)

from treeattn.models import create_model
from treeattn.ops.bands import BandSettings, band_wise

BANDS = {"auto": {}, "off": {"enabled": False}}


def forward_run(model: torch.nn.Module, x: torch.Tensor, bands: dict):
    model.eval()

    def run() -> None:
        with torch.no_grad(), band_wise(model, BandSettings(**bands)):
            model(x)

    return run


def train_run(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor):
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def run() -> None:
        F.l1_loss(model(x), target).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


def bench_mode(runs: dict, *, repeats: int) -> dict:
    """Warm up each run (measuring its peak RSS), then time them ABBA-interleaved."""
    rows = {}
    for name, run in runs.items():
        with peak_rss() as peak:
            run()
        rows[name] = {"peak_rss_gib": peak["bytes"] / 2**30, "rss_reset": peak["reset"]}
    for name, times in abba_times(runs, repeats=repeats).items():
        rows[name].update(summarise(times))
    return rows


def bench_sizes(args: argparse.Namespace, models: dict, macs: dict) -> dict[str, dict]:
    """Time every (size, model) of a mode ABBA-interleaved together, so that the per-pixel cost of
    one size against another is as robust to machine drift as the model/peer ratio. Every forward
    size runs first, then every training size: a training step leaves the allocator holding GiBs,
    which would hide the band-wise forward's own peak RSS if it ran after it."""
    scale = next(iter(models.values())).meta.scale
    results: dict[str, dict] = {
        str(size): {"macs": {name: macs[name][size] for name in models}} for size in args.sizes
    }
    for mode, sizes in (("fwd", args.sizes), ("train", args.train_sizes)):
        runs = {}
        for size in sizes:
            torch.manual_seed(0)
            x = torch.rand(1, 3, size, size)
            if mode == "fwd":
                make = partial(forward_run, x=x, bands=BANDS[args.bands])
            else:
                make = partial(train_run, x=x, target=torch.rand(1, 3, size * scale, size * scale))
            for name, model in models.items():
                runs[size, name] = make(model)
        flops_per_mac = 2 if mode == "fwd" else 6
        for (size, name), row in bench_mode(runs, repeats=args.repeats).items():
            row["gflops"] = flops_per_mac * macs[name][size] / row["median_s"] / 1e9
            results[str(size)].setdefault(mode, {})[name] = row
    return results


def add_ratios(results: dict, model: str, peer: str) -> None:
    """Model/peer ratios per size and mode, and forward cost per pixel against the first size."""
    first = next(iter(results))
    for size, res in results.items():
        mac_ratio = res["macs"][model] / res["macs"][peer]
        res["ratios"] = {"macs": mac_ratio}
        for mode in ("fwd", "train"):
            if mode in res:
                time_ratio = res[mode][model]["median_s"] / res[mode][peer]["median_s"]
                res["ratios"][f"{mode}_time"] = time_ratio
                res["ratios"][f"{mode}_per_mac"] = time_ratio / mac_ratio
        for name, row in res["fwd"].items():
            pixels = (int(size) / int(first)) ** 2
            row["per_pixel_vs_first"] = row["median_s"] / results[first]["fwd"][name]["median_s"]
            row["per_pixel_vs_first"] /= pixels


def print_table(results: dict, model: str, peer: str) -> None:
    print(f"{'LR':>5} {'mode':<6} {'model':<16} {'median s':>9} {'GFLOP/s':>8} {'peak GiB':>9}")
    for size, res in results.items():
        for mode in ("fwd", "train"):
            for name, row in res.get(mode, {}).items():
                print(
                    f"{size:>5} {mode:<6} {name:<16} {row['median_s']:>9.3f} "
                    f"{row['gflops']:>8.1f} {row['peak_rss_gib']:>9.2f}"
                )
        ratios = ", ".join(f"{k} {v:.3f}" for k, v in res["ratios"].items())
        per_pixel = res["fwd"][model]["per_pixel_vs_first"]
        print(f"{size:>5} {model}/{peer}: {ratios}; fwd per pixel vs first size {per_pixel:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hiir_b_sr_x2")
    parser.add_argument("--peer", default="swin_b_sr_x2")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--train-sizes", type=int, nargs="*", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=4, help="timed runs per model (ABBA)")
    parser.add_argument("--bands", choices=sorted(BANDS), default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if extra := sorted(set(args.train_sizes) - set(args.sizes)):
        parser.error(f"--train-sizes {extra} must also be in --sizes {args.sizes}")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    names = (args.model, args.peer)
    models = {name: create_model(name) for name in names}
    macs = {
        name: {
            size: count_forward_macs(partial(create_model, name, backend="math"), size, in_chans=3)
            for size in args.sizes
        }
        for name in names
    }
    results = bench_sizes(args, models, macs)
    add_ratios(results, *names)
    meta = {**machine_meta(load_before), "model": args.model, "peer": args.peer}
    meta["bands"] = args.bands
    report_load(meta, f"median seconds; ratios = {args.model} / {args.peer}")
    print_table(results, *names)
    name = "model_bench" if args.bands == "auto" else f"model_bench_bands_{args.bands}"
    save_results(args.out, name, meta, results)


if __name__ == "__main__":
    main()
