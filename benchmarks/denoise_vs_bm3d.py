"""Gray Gaussian denoising: a treeattn model against BM3D, both through ``evaluate_folder``.

Both methods see exactly the same noisy images (AWGN, σ on the 0-255 scale, image ``i`` seeded with
``seed + i``, no clipping), and are scored by the same protocol (PSNR/SSIM on uint8-rounded
outputs). BM3D is the reference implementation (the ``bm3d`` package, ``pip install -e
".[bench]"``) called as ``bm3d.bm3d(noisy, σ / 255)``.

Writes ``benchmarks/results/denoise_vs_bm3d.json`` and ``.md``; BM3D rows already in the JSON (same
set, σ, seed, image count and bm3d version) are reused, since BM3D needs no training and takes
minutes per set::

    python benchmarks/denoise_vs_bm3d.py                          # the shipped model, Set12 + BSD68
    python benchmarks/denoise_vs_bm3d.py --model outputs/denoise  # a run folder (its model/)
    python benchmarks/denoise_vs_bm3d.py --quick                  # 2 images per set (smoke run)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import torch

from treeattn.data.benchmark import evaluate_folder
from treeattn.data.degradations import build_degradation
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
        "seconds_per_image": seconds / len(table.rows),
    }


def _markdown(rows: list[dict], *, model: str, threads: int) -> str:
    sets = sorted({r["set"] for r in rows}, key=[r["set"] for r in rows].index)
    sigmas = sorted({r["level"] for r in rows})
    by = {(r["method"], r["set"], r["level"]): r for r in rows}
    lines = [
        f"# Gray denoising: `{model}` vs BM3D (PSNR dB / SSIM, same noisy images)",
        "",
        "| set | σ | BM3D | treeattn | Δ PSNR | BM3D s/img | treeattn s/img |",
        "|---|---|---|---|---|---|---|",
    ]
    for set_name in sets:
        for sigma in sigmas:
            ref, ours = by.get(("bm3d", set_name, sigma)), by.get(("treeattn", set_name, sigma))
            if ref is None:
                continue
            if ours is None:  # --bm3d-only
                lines.append(
                    f"| {set_name} | {sigma:g} | {ref['psnr']:.2f} / {ref['ssim']:.4f} | — | — | "
                    f"{ref['seconds_per_image']:.2f} | — |"
                )
                continue
            lines.append(
                f"| {set_name} | {sigma:g} | {ref['psnr']:.2f} / {ref['ssim']:.4f} | "
                f"{ours['psnr']:.2f} / {ours['ssim']:.4f} | {ours['psnr'] - ref['psnr']:+.2f} | "
                f"{ref['seconds_per_image']:.2f} | {ours['seconds_per_image']:.2f} |"
            )
    lines += ["", f"CPU, {threads} thread(s); times include reading and scoring each image."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; returns the exit status (1 when treeattn loses anywhere)."""
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
    parser.add_argument("--out", type=Path, default=RESULTS / "denoise_vs_bm3d.json")
    args = parser.parse_args(argv)
    if args.model is None and not args.bm3d_only:
        parser.error("no shipped gray denoiser found; pass --model")
    from treeattn.threads import resolve_threads

    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    model = None if args.bm3d_only else load_model(args.model).eval()
    name = "none" if args.bm3d_only else args.model
    count = 2 if args.quick else None
    bm3d_version = version("bm3d")
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    cached = {
        (r["set"], r["level"], r["seed"], r["images"]): r
        for r in old.get("rows", [])
        if r["method"] == "bm3d" and old.get("bm3d_version") == bm3d_version
    }
    rows: list[dict] = []
    record = {
        "model": name,
        "bm3d_version": bm3d_version,
        "torch_version": torch.__version__,
        "threads": threads,
        "command": "python benchmarks/denoise_vs_bm3d.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    scratch = Path(tempfile.mkdtemp(prefix="denoise_vs_bm3d_"))
    for set_name in args.sets:
        folder = _limited(args.data / set_name, count, scratch)
        images = len(list(folder.iterdir()))
        for sigma in args.sigmas:
            ref = cached.get((set_name, sigma, args.seed, images))
            if ref is None:
                ref = _row("bm3d", set_name, sigma, _bm3d(sigma), folder, args.seed)
            rows.append(ref)
            line = f"{set_name} σ={sigma:g}: BM3D {ref['psnr']:.2f} dB"
            if model is not None:
                ours = _row("treeattn", set_name, sigma, model, folder, args.seed)
                rows.append(ours)
                line += f", treeattn {ours['psnr']:.2f} dB ({ours['psnr'] - ref['psnr']:+.2f})"
            print(line, flush=True)
            _save(args.out, record, kept=[r for k, r in cached.items() if r not in rows])
    print(f"written {args.out} and {args.out.with_suffix('.md')}")
    losses = [r for r in rows if r["method"] == "treeattn" and r["psnr"] <= _ref(rows, r)]
    return 1 if losses else 0


def _save(path: Path, record: dict, *, kept: list[dict]) -> None:
    """Write the JSON (with cached BM3D rows not redone, so none is lost) and the table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, "rows": record["rows"] + kept}, indent=2) + "\n")
    table = _markdown(record["rows"], model=record["model"], threads=record["threads"])
    path.with_suffix(".md").write_text(table)


def _ref(rows: list[dict], ours: dict) -> float:
    return next(
        r["psnr"]
        for r in rows
        if r["method"] == "bm3d" and (r["set"], r["level"]) == (ours["set"], ours["level"])
    )


if __name__ == "__main__":
    sys.exit(main())
