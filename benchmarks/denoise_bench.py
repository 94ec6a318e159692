"""Gray Gaussian denoising: a treeattn model against BM3D, both through ``evaluate_folder``.

Both methods see exactly the same noisy images (AWGN, σ on the 0-255 scale, image ``i`` seeded with
``seed + i``, no clipping), and are scored by the same protocol (PSNR/SSIM on uint8-rounded
outputs). BM3D is the reference implementation (the ``bm3d`` package, ``pip install -e
".[bench]"``) called as ``bm3d.bm3d(noisy, σ / 255)``.

Writes ``benchmarks/results/denoise_bench.json`` and ``.md``; BM3D rows already in the JSON (same
set, σ, seed, image count and bm3d version) are reused, since BM3D needs no training and takes
minutes per set::

    python benchmarks/denoise_bench.py                          # the shipped model, Set12 + BSD68
    python benchmarks/denoise_bench.py --model outputs/denoise  # a run folder (its model/)
    python benchmarks/denoise_bench.py --quick                  # 2 images per set (smoke run)
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import torch

from treeattn.data.benchmark import evaluate_folder
from treeattn.data.degradations import build_degradation
from treeattn.inference.api import restore_image
from treeattn.inference.loading import load_model
from treeattn.models import list_pretrained

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "test"
RESULTS = ROOT / "benchmarks" / "results"
Restorer = Callable[[torch.Tensor], torch.Tensor]


def _bm3d(sigma: float) -> Restorer:
    import bm3d

    def restore(noisy: torch.Tensor) -> torch.Tensor:
        out = bm3d.bm3d(noisy[0, 0].double().numpy(), sigma / 255.0)
        return torch.from_numpy(out).float()[None, None]

    return restore


def _limited(folder: Path, count: int | None, scratch: Path) -> Path:
    """``folder`` itself, or a scratch folder of links to its first ``count`` images."""
    if count is None:
        return folder
    from treeattn.data.io import list_images

    target = scratch / folder.name
    target.mkdir(parents=True, exist_ok=True)
    for path in list_images(folder)[:count]:
        link = target / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return target


def _row(
    method: str, set_name: str, sigma: float, restore: Restorer, folder: Path, seed: int
) -> dict:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    table = evaluate_folder(
        restore,
        folder,
        degradation=build_degradation("awgn", sigma=sigma),
        protocol="denoise",
        seed=seed,
        channels=1,
    )
    seconds = time.perf_counter() - start
    return {
        "method": method,
        "set": set_name,
        "level": sigma,
        "seed": seed,
        "images": len(table.rows),
        "psnr": table.mean["psnr"],
        "ssim": table.mean["ssim"],
        "input_psnr": table.mean["input_psnr"],
        **_timing(method, seconds, _megapixels(folder, len(table.rows)), len(table.rows), load),
    }


def _megapixels(folder: Path, count: int) -> float:
    """Pixels (millions) of the first ``count`` images of ``folder`` (the order of a run)."""
    from PIL import Image

    from treeattn.data.io import list_images

    sizes = []
    for path in list_images(folder)[:count]:
        with Image.open(path) as image:
            sizes.append(image.width * image.height)
    return sum(sizes) / 1e6


def _timing(method: str, seconds: float, megapixels: float, images: int, load: float) -> dict:
    """A row's time fields: seconds per image and per megapixel (rows may time different
    images), the images, pixels and threads timed, and the load average before.

    The ``bm3d`` package runs its own threads on every core the process may use; the model runs
    on torch's threads.
    """
    threads = len(os.sched_getaffinity(0)) if method == "bm3d" else torch.get_num_threads()
    return {
        "seconds_per_image": seconds / images,
        "seconds_per_megapixel": seconds / megapixels,
        "timed_images": images,
        "timed_megapixels": round(megapixels, 4),
        "threads": threads,
        "load_before": round(load, 2),
    }


def _retime_bm3d(row: dict, folder: Path, count: int) -> dict:
    """``row`` with its time taken again on the first ``count`` images (scores unchanged)."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    evaluate_folder(
        _bm3d(row["level"]),
        _limited(folder, count, Path(tempfile.mkdtemp(prefix="bm3d_retime_"))),
        degradation=build_degradation("awgn", sigma=row["level"]),
        protocol="denoise",
        seed=row["seed"],
        channels=1,
    )
    seconds = time.perf_counter() - start
    return {**row, **_timing("bm3d", seconds, _megapixels(folder, count), count, load)}


#: Column titles of the methods a run can score, in table order.
METHODS = {"bm3d": "BM3D", "treeattn": "treeattn", "treeattn_x8": "treeattn ×8 self-ensemble"}


def _markdown(rows: list[dict], *, model: str) -> str:
    sets = sorted({r["set"] for r in rows}, key=[r["set"] for r in rows].index)
    sigmas = sorted({r["level"] for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    by = {(r["method"], r["set"], r["level"]): r for r in rows}
    ours = [m for m in methods if m != "bm3d"]
    lines = [
        f"# Gray denoising: `{model}` vs BM3D (PSNR dB / SSIM, same noisy images)",
        "",
        "| set | σ | "
        + " | ".join(METHODS[m] for m in methods)
        + "".join(f" | Δ PSNR {METHODS[m]}" for m in ours)
        + "".join(f" | {METHODS[m]} s/MP" for m in methods)
        + " |",
        "|---" * (2 + len(methods) + len(ours) + len(methods)) + "|",
    ]
    for set_name in sets:
        for sigma in sigmas:
            cells = [by.get((m, set_name, sigma)) for m in methods]
            if cells[0] is None:
                continue
            ref = cells[0]["psnr"]
            scores = [f"{c['psnr']:.2f} / {c['ssim']:.4f}" if c else "—" for c in cells]
            deltas = [f"{c['psnr'] - ref:+.2f}" if c else "—" for c in cells[1:]]
            times = [f"{c['seconds_per_megapixel']:.1f}" if c else "—" for c in cells]
            lines.append(
                f"| {set_name} | {sigma:g} | " + " | ".join(scores + deltas + times) + " |"
            )
    timed = sorted({(r["method"], r.get("threads", "?"), r.get("timed_images")) for r in rows})
    notes = ", ".join(
        f"{METHODS[m]} at {t} thread(s)" + (f" on {n} image(s) per row" if n else "")
        for m, t, n in timed
    )
    lines += [
        "",
        f"Time: seconds per megapixel of the timed images, reading and scoring included; {notes}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; returns 1 when at some set and σ no treeattn mode beats BM3D."""
    shipped = list_pretrained("*gray*")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=shipped[0] if shipped else None,
        help="shipped model name, save_pretrained folder or run folder (default: the shipped "
        "gray denoiser)",
    )
    parser.add_argument("--sets", nargs="+", default=["Set12", "BSD68"], help="folders in --data")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[15.0, 25.0, 50.0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the test sets")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of image 0")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    parser.add_argument("--quick", action="store_true", help="2 images per set (smoke run)")
    parser.add_argument(
        "--bm3d-only", action="store_true", help="only fill the BM3D rows of --out (no model)"
    )
    parser.add_argument(
        "--self-ensemble",
        action="store_true",
        help="also score the model with ×8 self-ensemble (flips and rotations averaged)",
    )
    parser.add_argument(
        "--retime-bm3d",
        type=int,
        metavar="N",
        help="time the cached BM3D rows again on the first N images of each set (on a quiet "
        "machine; the scores stay those of the full sets)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "denoise_bench.json")
    args = parser.parse_args(argv)
    if args.retime_bm3d is not None and args.retime_bm3d < 1:
        parser.error(f"--retime-bm3d needs a count of images >= 1, got {args.retime_bm3d}")
    if args.model is None and not args.bm3d_only:
        parser.error("no shipped gray denoiser found; pass --model")
    from treeattn.threads import resolve_threads

    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    restorers: dict[str, Restorer] = {}
    if not args.bm3d_only:
        model = load_model(args.model).eval()
        restorers["treeattn"] = model
        if args.self_ensemble:
            restorers["treeattn_x8"] = functools.partial(restore_image, model, self_ensemble=True)
    name = "none" if args.bm3d_only else args.model
    count = 2 if args.quick else None
    bm3d_version = version("bm3d")
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    cached = {
        (r["set"], r["level"], r["seed"], r["images"]): r
        for r in old.get("rows", []) + old.get("other_bm3d_rows", [])
        if r["method"] == "bm3d" and old.get("bm3d_version") == bm3d_version
    }
    rows: list[dict] = []
    record = {
        "model": name,
        "bm3d_version": bm3d_version,
        "torch_version": torch.__version__,
        "threads": threads,
        "command": "python benchmarks/denoise_bench.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    scratch = Path(tempfile.mkdtemp(prefix="denoise_bench_"))
    for set_name in args.sets:
        folder = _limited(args.data / set_name, count, scratch)
        images = len(list(folder.iterdir()))
        for sigma in args.sigmas:
            ref = cached.get((set_name, sigma, args.seed, images))
            if ref is None:
                ref = _row("bm3d", set_name, sigma, _bm3d(sigma), folder, args.seed)
            elif args.retime_bm3d:
                ref = _retime_bm3d(ref, folder, min(args.retime_bm3d, images))
            rows.append(ref)
            line = f"{set_name} σ={sigma:g}: BM3D {ref['psnr']:.2f} dB"
            for method, restore in restorers.items():
                ours = _row(method, set_name, sigma, restore, folder, args.seed)
                rows.append(ours)
                line += f", {method} {ours['psnr']:.2f} dB ({ours['psnr'] - ref['psnr']:+.2f})"
            print(line, flush=True)
            done = {(r["set"], r["level"], r["seed"], r["images"]) for r in rows}
            _save(args.out, record, kept=[r for k, r in cached.items() if k not in done])
    print(f"written {args.out} and {args.out.with_suffix('.md')}")
    best = {}
    for r in rows:
        if r["method"] != "bm3d":
            key = (r["set"], r["level"])
            best[key] = max(best.get(key, -math.inf), r["psnr"] - _ref(rows, r))
    return 1 if any(margin <= 0 for margin in best.values()) else 0


def _save(path: Path, record: dict, *, kept: list[dict]) -> None:
    """Write the JSON and the table; ``rows`` are this run's, ``other_bm3d_rows`` the cached BM3D
    rows it did not use (other sets, seeds or image counts), kept so that none is lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, "other_bm3d_rows": kept}, indent=2) + "\n")
    table = _markdown(record["rows"], model=record["model"])
    path.with_suffix(".md").write_text(table)


def _ref(rows: list[dict], ours: dict) -> float:
    return next(
        r["psnr"]
        for r in rows
        if r["method"] == "bm3d" and (r["set"], r["level"]) == (ours["set"], ours["level"])
    )


if __name__ == "__main__":
    sys.exit(main())
