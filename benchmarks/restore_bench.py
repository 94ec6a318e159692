"""Time and peak memory of restoring large gray images: whole vs tiled, or this code vs older code.

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

**This code against older code** (``--baseline-src``, or ``--baseline``): the shipped denoiser
(``hiir_dn_gray_cpu``, or ``--model``) restores a 1024² and a 3840×2160 gray image (or
``--sizes``) whole, with this checkout's treeattn and with the treeattn of another checkout — the
commit before a speed change, checked out beside this one::

    git worktree add --detach ../old0160 0160b40
    python benchmarks/restore_bench.py --baseline-src ../old0160 --threads 2 --repeats 3
    python benchmarks/restore_bench.py --baseline-src ../old0160 --dry-run   # setup check, 64²

How the two versions are compared, and why: every run is a fresh worker process (this script with
``--worker``) that imports treeattn from one checkout only (``PYTHONPATH``). Importing both
versions into one process (``importlib`` under two names) would not be fair: they would share
the allocator's free lists and page cache warmed by whichever ran first, and the old version's
modules would see the new one's global state (``torch`` settings, registries). Separate
processes, run in alternating order per size (new, old, old, new, … — ABBA), give each version
the same start and spread the drifts of a shared machine evenly over both. A worker loads the
model, restores the image ``--warmup`` times untimed and then once timed (wall clock and process
CPU time), reads its process's peak RSS and saves its output.

The table gives per size the seconds per megapixel of each version (median over ``--repeats``),
their ratio (old / new: above 1, this code is faster), the largest absolute difference between
the two outputs, and each version's peak RSS (the whole process: interpreter, weights, input,
activations). The JSON (``--json``; by default ``benchmarks/results/restore_vs_<commit>.json``,
not written by ``--dry-run``) adds each run, the commits of both checkouts and whether this one
has uncommitted changes, and the goal of issue 19 checked: at least 2× faster per megapixel at
every size, outputs within 1e-6, peak RSS at 3840×2160 at most 8 GB (:data:`GOAL`).
``--dry-run`` restores one 64² image once per version with no warm-up: it checks the setup
(both checkouts import, same weights, outputs agree), and its times mean nothing.
``--tile-pixels`` sets the band-wise tile size (:func:`treeattn.ops.bands.band_execution`) in
both versions. Both versions must restore with the same saved weights: give a model that has them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

DEFAULT_SIZES = ("512x512", "2048x2048", "2160x3840")
BASELINE_SIZES = ("1024x1024", "2160x3840")
DRY_RUN_SIZE = "64x64"
BASELINE_MODEL = "hiir_dn_gray_cpu"
ROOT = Path(__file__).resolve().parents[1]  # the checkout this script belongs to: "new"
RESULTS = ROOT / "benchmarks" / "results"
#: Issue 19, point 1: the shipped denoiser against the code of commit 0160b40.
GOAL = {
    "min_speedup": 2.0,  # old s/MP over new s/MP, at every size
    "max_abs_diff": 1e-6,  # between the two versions' outputs
    "max_peak_rss_bytes": 8 * 10**9,  # this code's peak RSS at rss_size
    "rss_size": [2160, 3840],
}


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → ``(H, W)``."""
    height, _, width = text.partition("x")
    try:
        size = int(height), int(width or height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be HxW, e.g. 1024x1024") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be HxW with positive sides")
    return size


def gray_image(size: tuple[int, int]) -> torch.Tensor:
    """The gray image every run restores: uniform noise from a fixed seed (the same in every
    process and version)."""
    return torch.rand(1, 1, *size, generator=torch.Generator().manual_seed(0))


def measure(model: torch.nn.Module, x: torch.Tensor, tile: int | None, overlap: int) -> dict:
    """Wall time of one restoration and the peak activation memory of another."""
    from treeattn import restore_image
    from treeattn.analysis.memory import LiveTensorTracker

    start = time.perf_counter()
    restore_image(model, x, tile=tile, overlap=overlap)
    seconds = time.perf_counter() - start
    tracker = LiveTensorTracker(ignore=[x, *model.parameters(), *model.buffers()])
    with tracker:
        restore_image(model, x, tile=tile, overlap=overlap)
    return {"seconds": seconds, "peak_bytes": tracker.peak}


# ---------------------------------------------------------------------------------------------
# --baseline-src: this code against an older checkout, one worker process per run, ABBA.


def run_worker(args: argparse.Namespace) -> None:
    """Restore one image with whichever treeattn this process imports; print one JSON line."""
    from contextlib import nullcontext

    import treeattn
    from treeattn import restore_image
    from treeattn.inference import load_model
    from treeattn.ops.bands import band_execution

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    x = gray_image(args.size)
    tiles = (
        nullcontext() if args.tile_pixels is None else band_execution(tile_pixels=args.tile_pixels)
    )
    with tiles:
        for _ in range(args.warmup):
            restore_image(model, x)
        wall, cpu = time.perf_counter(), time.process_time()
        y = restore_image(model, x)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if args.output is not None:
        torch.save(y.contiguous(), args.output)
    record = {
        "treeattn": str(Path(treeattn.__file__).resolve().parent),
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(record), flush=True)


def _worker(root: Path, args: argparse.Namespace, size: tuple[int, int], output: Path | None):
    """Run one worker with ``root``'s treeattn; its JSON record."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", args.model]
    command += ["--sizes", f"{size[0]}x{size[1]}", "--warmup", str(args.warmup)]
    command += ["--threads", str(args.threads)]
    if args.tile_pixels is not None:
        command += ["--tile-pixels", str(args.tile_pixels)]
    if output is not None:
        command += ["--output", str(output)]
    env = {**os.environ, "PYTHONPATH": str(root)}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"worker with treeattn from {root} failed:\n{done.stderr[-4000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(record["treeattn"]) != (root / "treeattn").resolve():
        raise SystemExit(
            f"the worker for {root} imported treeattn from {record['treeattn']}; an installed "
            "treeattn shadows PYTHONPATH — run from a virtual environment without it"
        )
    return record


def abba_order(repeats: int) -> list[str]:
    """The run order of one size: new, old, then old, new, and so on (``repeats`` runs each)."""
    return [name for r in range(repeats) for name in (("new", "old"), ("old", "new"))[r % 2]]


def compare_versions(args: argparse.Namespace, baseline: Path) -> list[dict]:
    """Per size, ``args.repeats`` runs of each version in ABBA order; one row per size."""
    roots = {"new": ROOT, "old": baseline}
    rows = []
    header = f"{'size':>11}  {'new s/MP':>9} {'old s/MP':>9} {'old/new':>8}  {'max |diff|':>10}"
    print(f"{header}  {'new RSS':>9} {'old RSS':>9}")
    with tempfile.TemporaryDirectory(prefix="restore_bench_") as scratch:
        for size in args.sizes:
            megapixels = size[0] * size[1] / 1e6
            runs: dict[str, list[dict]] = {"new": [], "old": []}
            outputs = {name: Path(scratch) / f"{name}.pt" for name in roots}
            order = abba_order(args.repeats)
            for name in order:
                output = outputs[name] if not runs[name] else None  # the first run's output
                runs[name].append(_worker(roots[name], args, size, output))
            new, old = (torch.load(outputs[name]) for name in ("new", "old"))
            per_mp = {
                name: statistics.median(r["seconds"] for r in runs[name]) / megapixels
                for name in roots
            }
            row = {
                "size": list(size),
                "new_s_per_mp": per_mp["new"],
                "old_s_per_mp": per_mp["old"],
                "old_over_new": per_mp["old"] / per_mp["new"],
                "max_abs_diff": float((new - old).abs().max()) if new.shape == old.shape else None,
                "new_peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs["new"]),
                "old_peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs["old"]),
                "order": order,
                "runs": runs,
            }
            rows.append(row)
            diff = "shape!" if row["max_abs_diff"] is None else f"{row['max_abs_diff']:.2e}"
            rss = (row[f"{name}_peak_rss_bytes"] / 2**30 for name in ("new", "old"))
            print(
                f"{size[0]:>5}×{size[1]:<5}  {per_mp['new']:9.3f} {per_mp['old']:9.3f} "
                f"{row['old_over_new']:7.2f}×  {diff:>10}  "
                + "  ".join(f"{gib:5.2f} GiB" for gib in rss),
                flush=True,
            )
    return rows


def check_goal(rows: list[dict], goal: dict = GOAL) -> dict:
    """Whether the compared rows meet ``goal`` (:data:`GOAL`): ``goal`` with ``met`` and the
    ``failures``, one line each — a size too slow, outputs too far apart, too much memory at
    ``goal["rss_size"]``, or that size not measured."""
    failures = []
    for row in rows:
        size = "×".join(map(str, row["size"]))
        if row["old_over_new"] < goal["min_speedup"]:
            failures.append(
                f"{size}: {row['old_over_new']:.2f}× faster per megapixel, "
                f"goal {goal['min_speedup']}×"
            )
        diff = row["max_abs_diff"]
        if diff is None or diff > goal["max_abs_diff"]:
            shown = "different shapes" if diff is None else f"{diff:.2e}"
            failures.append(f"{size}: outputs differ by {shown}, goal ≤ {goal['max_abs_diff']}")
    large = [row for row in rows if row["size"] == list(goal["rss_size"])]
    size = "×".join(map(str, goal["rss_size"]))
    if not large:
        failures.append(f"{size}: not measured, so its peak RSS is unchecked")
    elif large[0]["new_peak_rss_bytes"] > goal["max_peak_rss_bytes"]:
        failures.append(
            f"{size}: peak RSS {large[0]['new_peak_rss_bytes'] / 1e9:.2f} GB, "
            f"goal ≤ {goal['max_peak_rss_bytes'] / 1e9:.0f} GB"
        )
    return {**goal, "met": not failures, "failures": failures}


def checkout_state(root: Path) -> dict:
    """The commit of the git checkout at ``root`` and whether its ``treeattn/`` has uncommitted
    changes (``None`` each outside git)."""

    def git(*argv: str) -> str | None:
        done = subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "treeattn")
    return {
        "path": str(root),
        "commit": git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
    }


def run_comparison(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``--baseline-src``: check the arguments, compare, print the goal, write the JSON."""
    baseline = args.baseline.resolve()
    if not (baseline / "treeattn" / "__init__.py").is_file():
        parser.error(
            f"--baseline-src {args.baseline} holds no treeattn/ package; give the root of a "
            "checkout, e.g. one made by `git worktree add --detach ../old0160 0160b40`"
        )
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if args.tile_pixels is not None and args.tile_pixels < 1:
        parser.error(f"--tile-pixels {args.tile_pixels} must be >= 1, e.g. 16384")
    args.model = args.model or BASELINE_MODEL
    if args.sizes is None:
        args.sizes = [parse_size(s) for s in ((DRY_RUN_SIZE,) if args.dry_run else BASELINE_SIZES)]
    if args.dry_run:
        args.repeats, args.warmup = 1, 0
    rows = compare_versions(args, baseline)
    goal = check_goal(rows)
    print("goal met" if goal["met"] else "goal not met: " + "; ".join(goal["failures"]))
    if args.dry_run:
        print("(--dry-run: a setup check; its times mean nothing)")
    checkouts = {"new": checkout_state(ROOT), "old": checkout_state(baseline)}
    settings = {
        "model": args.model,
        "baseline": str(baseline),
        "checkouts": checkouts,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "tile_pixels": args.tile_pixels,
        "dry_run": args.dry_run,
        "goal": goal,
    }
    if args.json is None and not args.dry_run:
        commit = checkouts["old"]["commit"]
        args.json = RESULTS / f"restore_vs_{commit[:7] if commit else baseline.name}.json"
    _write_json(args, settings, rows)


# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        help=f"HxW sizes (default: {' '.join(DEFAULT_SIZES)}; with --baseline-src "
        f"{' '.join(BASELINE_SIZES)}; with --dry-run {DRY_RUN_SIZE})",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=("whole", "tiled"), default=("whole", "tiled")
    )
    parser.add_argument(
        "--model",
        help="gray model to run: shipped name or folder (default: random hiir_unet_tiny; "
        f"with --baseline-src, {BASELINE_MODEL})",
    )
    parser.add_argument("--tile", type=int, default=512, help="tile side (input pixels)")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--baseline-src",
        "--baseline",
        dest="baseline",
        type=Path,
        help="root of a checkout of older treeattn code (see the module docstring): time this "
        "code against it instead of whole vs tiled",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per version (--baseline-src)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed restorations before the timed one"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=f"with --baseline-src: one {DRY_RUN_SIZE} run per version, no warm-up (setup check)",
    )
    parser.add_argument(
        "--tile-pixels",
        type=int,
        help="band-wise tile size in pixels, in both versions (--baseline-src; default: theirs)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker:
        args.size = args.sizes[0]
        run_worker(args)
        return
    if args.baseline is not None:
        run_comparison(args, parser)
        return
    if args.dry_run or args.tile_pixels is not None:
        parser.error("--dry-run and --tile-pixels go with --baseline-src")
    args.sizes = args.sizes or [parse_size(s) for s in DEFAULT_SIZES]
    from treeattn import create_model
    from treeattn.inference import load_model

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
    for size in args.sizes:
        x = gray_image(size)
        for mode in args.modes:
            tile = args.tile if mode == "tiled" else None
            result = {"size": list(size), "mode": mode, **measure(model, x, tile, args.overlap)}
            rows.append(result)
            print(
                f"{size[0]:>5}×{size[1]:<5}  {mode:<6} {result['seconds']:8.2f}s  "
                f"{result['peak_bytes'] / 2**20:9.1f} MiB",
                flush=True,
            )
    settings = {
        "tile": args.tile,
        "overlap": args.overlap,
        "model": name or "hiir_unet_tiny (gray, random weights)",
    }
    _write_json(args, settings, rows)


def _write_json(args: argparse.Namespace, settings: dict, rows: list[dict]) -> None:
    if not args.json:
        return
    args.json.parent.mkdir(parents=True, exist_ok=True)
    threads = args.threads or torch.get_num_threads()
    machine = {"platform": platform.platform(), "threads": threads}
    args.json.write_text(json.dumps({**machine, **settings, "rows": rows}, indent=2) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
