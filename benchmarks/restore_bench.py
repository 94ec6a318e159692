"""Time and peak memory of restoring large gray images, whole vs tiled (not a test).

The tiny U-shape denoiser (``hiir_unet_tiny``, 1 channel, random weights) — or any gray model
given with ``--model`` (a shipped name, a saved folder or a run folder) — restores one image of
each size through :func:`treeattn.restore_image`, once as a whole and once in overlapping tiles.
Each case reports the wall time of one run and the peak activation memory (live tensor storages,
see :mod:`treeattn.analysis.memory`, measured in a second run; the input and the weights are not
counted, the output and the tiling accumulators are). Whole-image memory grows with the image;
tiled memory is bounded by the tile (plus the output-sized accumulators).

Usage::

    python benchmarks/restore_bench.py                          # 512², 2048², 3840×2160
    python benchmarks/restore_bench.py --sizes 64x96 --tile 32 --overlap 8   # smoke run
    python benchmarks/restore_bench.py --modes tiled --json benchmarks/results/restore.json
    python benchmarks/restore_bench.py --model hiir_dn_gray_cpu --sizes 2160x3840 --modes whole

The 3840×2160 whole-image case needs several GB and minutes on a laptop CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from treeattn import create_model, restore_image
from treeattn.analysis.memory import LiveTensorTracker
from treeattn.inference import load_model

DEFAULT_SIZES = ("512x512", "2048x2048", "2160x3840")


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → ``(H, W)``."""
    height, _, width = text.partition("x")
    size = int(height), int(width or height)
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be HxW with positive sides")
    return size


def measure(model: torch.nn.Module, x: torch.Tensor, tile: int | None, overlap: int) -> dict:
    """Wall time of one restoration and the peak activation memory of another."""
    start = time.perf_counter()
    restore_image(model, x, tile=tile, overlap=overlap)
    seconds = time.perf_counter() - start
    tracker = LiveTensorTracker(ignore=[x, *model.parameters(), *model.buffers()])
    with tracker:
        restore_image(model, x, tile=tile, overlap=overlap)
    return {"seconds": seconds, "peak_bytes": tracker.peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=DEFAULT_SIZES)
    parser.add_argument(
        "--modes", nargs="+", choices=("whole", "tiled"), default=("whole", "tiled")
    )
    parser.add_argument(
        "--model", help="gray model to run: shipped name or folder (default: random hiir_unet_tiny)"
    )
    parser.add_argument("--tile", type=int, default=512, help="tile side (input pixels)")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        model, name = load_model(args.model).eval(), args.model
        if model.meta.in_chans != 1:
            parser.error(f"{args.model} takes {model.meta.in_chans} channels; give a gray model")
    else:
        model, name = create_model("hiir_unet_tiny", in_chans=1, out_chans=1).eval(), None
    rows = []
    print(f"{'size':>11}  {'mode':<6} {'time':>9}  {'peak memory':>12}")
    for size in (parse_size(s) if isinstance(s, str) else s for s in args.sizes):
        x = torch.rand(1, 1, *size, generator=torch.Generator().manual_seed(0))
        for mode in args.modes:
            tile = args.tile if mode == "tiled" else None
            result = {"size": list(size), "mode": mode, **measure(model, x, tile, args.overlap)}
            rows.append(result)
            print(
                f"{size[0]:>5}×{size[1]:<5}  {mode:<6} {result['seconds']:8.2f}s  "
                f"{result['peak_bytes'] / 2**20:9.1f} MiB",
                flush=True,
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        machine = {"platform": platform.platform(), "threads": torch.get_num_threads()}
        settings = {
            "tile": args.tile,
            "overlap": args.overlap,
            "model": name or "hiir_unet_tiny (gray, random weights)",
        }
        args.json.write_text(json.dumps({**machine, **settings, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
