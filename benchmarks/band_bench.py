"""Where band-wise inference starts to pay, and at which tile size (not a test).

``HiIRLayer(180, 6, (16, 64))`` inference (eval, no autograd) on square maps — or, with
``--model``, a whole registered model on square inputs — whole and band-wise with several tile
sizes, ABBA-interleaved in one process per size; reports the cost per pixel of each setting and its
time relative to the whole map. The constants ``BAND_MIN_PIXELS`` and ``BAND_TILE_PIXELS`` of
:mod:`treeattn.ops.bands` are read off these tables: the tile that is cheapest on large maps, and
the smallest map on which it beats the whole map.

Usage::

    python benchmarks/band_bench.py --threads 2            # band_bench.json in benchmarks/results/
    python benchmarks/band_bench.py --threads 2 --model hiir_b_sr_x2 --sizes 64 128 256
    python benchmarks/band_bench.py --sizes 64 128 --tiles 64 --repeats 2
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from benchlib import abba_times, machine_meta, report_load, save_results, summarise

from treeattn.layers import HiIRLayer
from treeattn.models import create_model
from treeattn.ops.bands import BandSettings, band_wise


def forward_run(module: torch.nn.Module, x: torch.Tensor, settings: dict):
    def run() -> None:
        with torch.no_grad(), band_wise(module, BandSettings(**settings)):
            module(x)

    return run


def bench_size(size: int, module: torch.nn.Module, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    if args.model:
        x = torch.rand(1, module.meta.in_chans, size, size)
    else:
        x = torch.randn(1, size, size, args.dim)
    settings = {"whole": {"enabled": False}}
    for tile in args.tiles:
        if tile < size:  # a tile as large as the map is the whole map
            settings[f"tile{tile}"] = {"min_pixels": 0, "tile_pixels": tile * tile}
    runs = {name: forward_run(module, x, s) for name, s in settings.items()}
    for run in runs.values():
        run()  # warm-up
    rows = {name: summarise(t) for name, t in abba_times(runs, repeats=args.repeats).items()}
    for row in rows.values():
        row["us_per_pixel"] = row["median_s"] / size**2 * 1e6
        row["vs_whole"] = row["median_s"] / rows["whole"]["median_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 192, 256, 384, 512])
    parser.add_argument("--tiles", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--model", default=None, help="a registered model instead of the layer")
    parser.add_argument("--dim", type=int, default=180)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (ABBA)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    if args.model:
        module = create_model(args.model).eval()
        meta = {"model": args.model}
    else:
        module = HiIRLayer(args.dim, args.heads, (16, 64), data_format="BHWC").eval()
        meta = {"layer": f"HiIRLayer({args.dim}, {args.heads}, (16, 64))"}
    results = {str(size): bench_size(size, module, args) for size in args.sizes}
    meta = {**machine_meta(load_before), **meta}
    report_load(meta, "µs per pixel; vs whole = time / whole-map time")
    print(f"{'size':>5} " + " ".join(f"{name:>16}" for name in ["whole", *map(str, args.tiles)]))
    for size, rows in results.items():
        cells = []
        for name in ["whole", *(f"tile{t}" for t in args.tiles)]:
            row = rows.get(name)
            cells.append(f"{row['us_per_pixel']:8.2f} ({row['vs_whole']:.2f})" if row else "-")
        print(f"{size:>5} " + " ".join(f"{c:>16}" for c in cells))
    save_results(
        args.out, f"band_bench_{args.model}" if args.model else "band_bench", meta, results
    )


if __name__ == "__main__":
    main()
