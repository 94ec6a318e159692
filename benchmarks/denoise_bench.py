"""Gray Gaussian denoising: BM3D, DnCNN-S and treeattn's denoisers on the same noisy images.

Every row sees exactly the same noisy images (AWGN, σ on the 0-255 scale, image ``i`` of a set
seeded with ``seed + i``, no clipping) and is scored by the same protocol (PSNR/SSIM on
uint8-rounded outputs, no border crop), all through ``treeattn.data.evaluate_folder``. The rows:

* ``bm3d``: the reference implementation (the ``bm3d`` package, ``pip install -e ".[bench]"``),
  told σ: ``bm3d.bm3d(noisy, σ / 255)``.
* ``dncnn_s25``: DnCNN-S with its authors' σ = 25 weights (``../shared/models/dncnn_s25``, read by
  ``benchmarks/peers.py``), one forward pass, at σ = 25 only (the level it was trained for).
* ``treeattn`` and ``treeattn_x8``: every shipped gray denoiser (``treeattn list --pretrained``)
  and every ``--model``, in one forward pass and with ×8 self-ensemble (``--modes``).

Test sets (folders of ``--data``): Set12, BSD68 and Urban100. **Urban100 is scored on its first
``--urban-images`` images** (20 by default: ``img_001`` ... ``img_020`` in name order), by every
method alike, BM3D included: a report subset, kept apart from any Urban100 images used for
validation while training. Set12 and BSD68 are scored whole. ``--quick`` scores the first 2
images of every set (a smoke run, written to its own results file).

Results: ``benchmarks/results/denoise_bench.json`` holds every row computed so far, and ``.md``
one table per set, σ, seed and image count (PSNR, SSIM, Δ PSNR against BM3D and, at σ = 25,
against DnCNN-S, seconds per megapixel and threads). The JSON is also the cache: a row whose key
(method, model checksum, mode, set, σ, seed, image count) is already in it is reused, not
computed again, unless ``--recompute``; so the long benchmark can run in pieces, and stopping it
loses at most the row being computed. A model's checksum covers its config and weights (so a run
folder and the shipped copy of its model share rows); BM3D's is its package version. Each row
records its time: seconds per image and per megapixel of the images timed (reading, noise and
scoring included) and the threads (torch's for the networks; the ``bm3d`` package uses every core
the process may)::

    python benchmarks/denoise_bench.py                                # every row (hours of CPU)
    python benchmarks/denoise_bench.py --sets Urban100 --methods bm3d # one piece of it
    python benchmarks/denoise_bench.py --model ../runs/dn17 --no-shipped --modes 1  # a run folder
    python benchmarks/denoise_bench.py --quick --threads 1            # 2 images per set (smoke)

The exit status is 1 when some treeattn model scored by the run is, in every mode it ran, at or
below BM3D at some set and σ of the run.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch
from peers import DNCNN_S25, DNCNN_SIGMA, load_dncnn

from treeattn.data.benchmark import evaluate_folder
from treeattn.data.degradations import build_degradation
from treeattn.data.io import list_images
from treeattn.inference.api import restore_image
from treeattn.models import registry
from treeattn.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from treeattn.models.registry import list_pretrained, load_model

__all__ = [
    "METHODS",
    "main",
    "model_checksum",
    "model_folder",
    "read_rows",
    "row_group",
    "row_key",
    "save_rows",
    "shipped_denoisers",
]

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "test"
RESULTS = ROOT / "benchmarks" / "results"
FORMAT = "denoise_bench/1"
#: The long-range test set, scored on a report subset (its first ``--urban-images`` images).
URBAN = "Urban100"
#: The test sets, in the order of the tables.
SETS = ("Set12", "BSD68", URBAN)
Restorer = Callable[[torch.Tensor], torch.Tensor]

#: Row methods with their titles.
METHODS = {
    "bm3d": "BM3D",
    "dncnn_s25": "DnCNN-S",
    "treeattn": "treeattn",
    "treeattn_x8": "treeattn ×8 self-ensemble",
}
#: The treeattn method of each ``--modes`` choice (one pass, ×8 self-ensemble).
TREEATTN_MODES = {"1": "treeattn", "x8": "treeattn_x8"}


@dataclass(frozen=True)
class Entrant:
    """One row family: a method with its model, scored at every set and σ it applies to.

    Attributes:
        method: A key of :data:`METHODS`.
        model: Its name in the table (a shipped name, a folder as given, ``bm3d``, ...).
        checksum: What identifies the exact method (see :func:`model_checksum`).
        mode: ``"1"`` (one pass) or ``"x8"`` (×8 self-ensemble).
        build: The restorer at a given σ (only BM3D uses σ).
        sigmas: The σ it is scored at (``None``: every σ).
    """

    method: str
    model: str
    checksum: str
    mode: str
    build: Callable[[float], Restorer]
    sigmas: tuple[float, ...] | None = None


def row_key(row: dict) -> tuple:
    """The cache key of a row: method, checksum, mode, set, σ, seed and image count."""
    return (
        row["method"],
        row["checksum"],
        row["mode"],
        row["set"],
        float(row["level"]),
        row["seed"],
        row["images"],
    )


def _bm3d(sigma: float) -> Restorer:
    import bm3d

    def restore(noisy: torch.Tensor) -> torch.Tensor:
        out = bm3d.bm3d(noisy[0, 0].double().numpy(), sigma / 255.0)
        return torch.from_numpy(out).float()[None, None]

    return restore


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_folder(source: str) -> Path:
    """The ``save_pretrained`` folder of a model named as ``load_model`` takes it: a folder
    holding ``config.json``, a run folder (its ``model/``) or a shipped model's name
    (:func:`treeattn.models.registry.model_folder`).

    Raises:
        ValueError: If ``source`` is none of these (a folder holding no model among them).
    """
    try:
        return registry.model_folder(source)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"--model {source!r}: {error}") from error


def model_checksum(folder: Path) -> str:
    """SHA-256 of a saved model's architecture config and weights file (not of its training
    record or name, so re-saving the same model keeps the checksum)."""
    record = json.loads((folder / CONFIG_NAME).read_text())
    digest = hashlib.sha256(json.dumps(record["config"], sort_keys=True).encode())
    digest.update((folder / WEIGHTS_NAME).read_bytes())
    return digest.hexdigest()


def shipped_denoisers() -> list[str]:
    """The shipped treeattn models that denoise gray images with Gaussian noise."""
    names = []
    for name in list_pretrained():
        model = load_model(name)
        record = model.provenance
        if (
            model.meta.task == "denoise"
            and model.meta.in_chans == 1
            and (record is None or record.degradation == "awgn")
        ):
            names.append(name)
    return names


def _treeattn_entrants(source: str, modes: list[str]) -> list[Entrant]:
    folder = model_folder(source)
    checksum = model_checksum(folder)
    model = functools.cache(lambda: load_model(folder).eval())
    builds = {
        "1": lambda _sigma: functools.partial(restore_image, model()),
        "x8": lambda _sigma: functools.partial(restore_image, model(), self_ensemble=True),
    }
    return [Entrant(TREEATTN_MODES[m], source, checksum, m, builds[m]) for m in modes]


def _dncnn_entrant(path: Path) -> Entrant:
    net = functools.cache(lambda: load_dncnn(path))
    return Entrant(
        "dncnn_s25", "dncnn_s25", _file_sha256(path), "1", lambda _s: net(), (DNCNN_SIGMA,)
    )


def _limited(folder: Path, count: int | None, scratch: Path) -> Path:
    """``folder`` itself, or a scratch folder of links to its first ``count`` images."""
    if count is None:
        return folder
    target = scratch / folder.name
    target.mkdir(parents=True, exist_ok=True)
    for path in list_images(folder)[:count]:
        link = target / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return target


def _megapixels(folder: Path, count: int) -> float:
    """Pixels (millions) of the first ``count`` images of ``folder`` (the order of a run)."""
    from PIL import Image

    sizes = []
    for path in list_images(folder)[:count]:
        with Image.open(path) as image:
            sizes.append(image.width * image.height)
    return sum(sizes) / 1e6


def _timing(method: str, seconds: float, megapixels: float, images: int, load: float) -> dict:
    """A row's time fields: seconds per image and per megapixel (rows may time different
    images), the images, pixels and threads timed, and the load average before.

    The ``bm3d`` package runs its own threads on every core the process may use; the networks
    run on torch's threads.
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


def _row(entrant: Entrant, set_name: str, sigma: float, folder: Path, seed: int) -> dict:
    restore = entrant.build(sigma)
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
    images = len(table.rows)
    return {
        "method": entrant.method,
        "model": entrant.model,
        "checksum": entrant.checksum,
        "mode": entrant.mode,
        "set": set_name,
        "level": sigma,
        "seed": seed,
        "images": images,
        "psnr": table.mean["psnr"],
        "ssim": table.mean["ssim"],
        "input_psnr": table.mean["input_psnr"],
        **_timing(entrant.method, seconds, _megapixels(folder, images), images, load),
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


def _legacy_rows(record: dict, *, model: str | None = None) -> list[dict]:
    """The rows of a ``denoise_vs_bm3d.py`` results file, in this script's form.

    Its BM3D rows (``rows`` and ``other_bm3d_rows``) keep their scores and times, keyed by the
    recorded ``bm3d_version``. Its treeattn rows belong to the one model it names (``model``
    overrides that name, e.g. the shipped copy of a run folder that no longer exists); they are
    dropped, with a message, when that model cannot be found to take its checksum.
    """
    name = model or record.get("model")
    try:
        checksum = model_checksum(model_folder(name)) if name not in (None, "none") else None
    except ValueError:
        checksum = None
    notes = ["from denoise_vs_bm3d.py's results", record.get("note")]
    rows = []
    for row in record.get("rows", []) + record.get("other_bm3d_rows", []):
        if row["method"] == "bm3d":
            ident = {"model": "bm3d", "checksum": f"bm3d=={record['bm3d_version']}", "mode": "1"}
            note = notes
        elif checksum is None:
            print(f"legacy {row['method']} row of {name!r} dropped: model not found", flush=True)
            continue
        else:
            mode = next(m for m, method in TREEATTN_MODES.items() if method == row["method"])
            ident = {"model": name, "checksum": checksum, "mode": mode}
            scored = record.get("model")
            note = [*notes, f"scored as {scored}" if scored != name else None]
        made = {"command": record.get("command", ""), "torch_version": record.get("torch_version")}
        note = "; ".join(n for n in note if n)
        rows.append({"method": row["method"], **ident, **row, **made, "note": note})
    return rows


def read_rows(path: Path) -> list[dict]:
    """The rows of a results file (this script's, or the older ``denoise_vs_bm3d.py``'s); none
    when it does not exist."""
    if not path.is_file():
        return []
    record = json.loads(path.read_text())
    return record["rows"] if record.get("format") == FORMAT else _legacy_rows(record)


def row_group(row: dict) -> tuple:
    """The images a row scored: set, σ, seed and image count (rows of one group compare)."""
    return (row["set"], float(row["level"]), row["seed"], row["images"])


def _title(row: dict) -> str:
    if row["method"] in ("bm3d", "dncnn_s25"):
        return METHODS[row["method"]]
    return row["model"] + (" ×8" if row["mode"] == "x8" else "")


def _short(row: dict) -> str:
    return row["checksum"] if row["method"] == "bm3d" else row["checksum"][:8]


def _delta(row: dict, ref: dict | None) -> str:
    return "—" if ref is None or ref is row else f"{row['psnr'] - ref['psnr']:+.2f}"


def _order(row: dict) -> tuple:
    """BM3D, DnCNN-S, then the treeattn models by name, one pass before ×8."""
    family = {"bm3d": 0, "dncnn_s25": 1}.get(row["method"], 2)
    return (family, row["model"], row["mode"] != "1")


def _markdown(rows: list[dict], *, set_order: list[str], source: str) -> str:
    """One table per set, σ, seed and image count: BM3D, DnCNN-S, then the treeattn rows."""
    sets = list(dict.fromkeys([*set_order, *(r["set"] for r in rows)]))
    groups = sorted({row_group(r) for r in rows}, key=lambda g: (sets.index(g[0]), *g[1:]))
    lines = [
        "# Gray denoising: BM3D, DnCNN-S and treeattn (PSNR dB / SSIM, same noisy images)",
        "",
        f"Written by `benchmarks/denoise_bench.py` from `{source}`. AWGN seeded per image "
        "(image i of a set with seed + i), no clipping, uint8-rounded outputs, through "
        f"`evaluate_folder`. {URBAN}: its first images in name order (the count is in each "
        "heading), the same images for every method. Δ: the row's PSNR minus the reference's "
        "on the same images (DnCNN-S: σ = 25 only). s/MP: seconds per megapixel of the timed "
        "images (reading, noise and scoring included) at the row's threads (the bm3d package "
        "uses every core it may). Weights: the start of the model's checksum (BM3D: its version).",
    ]
    for group in groups:
        members = sorted((r for r in rows if row_group(r) == group), key=_order)
        refs = {
            m: next((r for r in members if r["method"] == m), None) for m in ("bm3d", "dncnn_s25")
        }
        against = ["bm3d"] + (["dncnn_s25"] if refs["dncnn_s25"] else [])
        columns = ["method", "weights", "PSNR", "SSIM"]
        columns += [f"Δ {METHODS[m]}" for m in against] + ["s/MP", "threads", "timed images"]
        set_name, sigma, seed, images = group
        lines += [
            "",
            f"## {set_name}, σ = {sigma:g} ({images} images, seed {seed})",
            "",
            "| " + " | ".join(columns) + " |",
            "|---" * len(columns) + "|",
        ]
        for row in members:
            cells = [f"{_title(row)}", f"`{_short(row)}`", f"{row['psnr']:.2f}"]
            cells += [f"{row['ssim']:.4f}", *(_delta(row, refs[m]) for m in against)]
            cells += [f"{row['seconds_per_megapixel']:.1f}", f"{row['threads']}"]
            cells.append(f"{row['timed_images']}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save_rows(path: Path, rows: list[dict], *, set_order: list[str] = SETS) -> None:
    """Write every row (JSON) and their tables (``.md`` beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "rows": rows}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    path.with_suffix(".md").write_text(_markdown(rows, set_order=set_order, source=path.name))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), help="folders in --data")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[15.0, 25.0, 50.0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the test sets")
    parser.add_argument(
        "--urban-images",
        type=int,
        default=20,
        metavar="N",
        help=f"score {URBAN} on its first N images in name order, by every method (default 20: "
        "img_001-img_020, the report subset)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["bm3d", "dncnn", "treeattn"],
        default=["bm3d", "dncnn", "treeattn"],
        help="row families to score (treeattn: the shipped gray denoisers and every --model)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PATH",
        help="an extra treeattn model: a run folder, a save_pretrained folder or a shipped name "
        "(repeatable)",
    )
    parser.add_argument(
        "--no-shipped", action="store_true", help="score only the --model models, not the shipped"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=list(TREEATTN_MODES),
        default=list(TREEATTN_MODES),
        help="treeattn modes: 1 (one forward pass), x8 (×8 self-ensemble: flips and rotations)",
    )
    parser.add_argument(
        "--dncnn", type=Path, default=DNCNN_S25, help="DnCNN-S σ=25 weights (model.safetensors)"
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed of image 0")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="first 2 images per set (smoke run; default --out denoise_bench_quick.json)",
    )
    parser.add_argument(
        "--recompute", action="store_true", help="compute the selected rows even when cached"
    )
    parser.add_argument(
        "--retime-bm3d",
        type=int,
        metavar="N",
        help="time the cached BM3D rows again on the first N images of each set (on a quiet "
        "machine; the scores stay those of the rows' images)",
    )
    parser.add_argument("--out", type=Path, help="results JSON (default: results/denoise_bench)")
    return parser


def _entrants(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Entrant]:
    entrants = []
    if "bm3d" in args.methods:
        entrants.append(Entrant("bm3d", "bm3d", f"bm3d=={version('bm3d')}", "1", _bm3d))
    if "dncnn" in args.methods:
        if not args.dncnn.is_file():
            parser.error(
                f"--dncnn {args.dncnn} not found: pass the DnCNN-S model.safetensors "
                "(../shared/models/dncnn_s25), or leave dncnn out of --methods"
            )
        entrants.append(_dncnn_entrant(args.dncnn))
    if "treeattn" in args.methods:
        sources = ([] if args.no_shipped else shipped_denoisers()) + args.model
        if not sources:
            parser.error("no treeattn model to score: pass --model, or leave out --no-shipped")
        for source in sources:
            try:
                entrants += _treeattn_entrants(source, args.modes)
            except ValueError as error:
                parser.error(str(error))
    unique = {(e.method, e.checksum): e for e in reversed(entrants)}  # the first name wins
    return [e for e in entrants if unique[e.method, e.checksum] is e]


def main(argv: list[str] | None = None) -> int:
    """Score the rows not yet cached; returns 1 when a treeattn model of this run is at or below
    BM3D (in every mode it ran) at some set and σ of the run."""
    parser = _parser()
    args = parser.parse_args(argv)
    for flag, value in (("--retime-bm3d", args.retime_bm3d), ("--urban-images", args.urban_images)):
        if value is not None and value < 1:
            parser.error(f"{flag} needs a count of images >= 1, got {value}")
    out = args.out or RESULTS / ("denoise_bench_quick.json" if args.quick else "denoise_bench.json")
    from treeattn.threads import resolve_threads

    torch.set_num_threads(resolve_threads(args.threads))
    entrants = _entrants(parser, args)
    rows = read_rows(out)
    command = "python benchmarks/denoise_bench.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    stamp = {
        "command": command,
        "torch_version": torch.__version__,
        "date": datetime.date.today().isoformat(),
    }
    scratch = Path(tempfile.mkdtemp(prefix="denoise_bench_"))
    scored: list[dict] = []
    for set_name in args.sets:
        count = args.urban_images if set_name == URBAN else None
        if args.quick:
            count = 2 if count is None else min(count, 2)
        folder = _limited(args.data / set_name, count, scratch)
        images = len(list_images(folder))
        for sigma in args.sigmas:
            for entrant in entrants:
                if entrant.sigmas is not None and sigma not in entrant.sigmas:
                    continue
                key = row_key(
                    {"method": entrant.method, "checksum": entrant.checksum, "mode": entrant.mode}
                    | {"set": set_name, "level": sigma, "seed": args.seed, "images": images}
                )
                cached = next((r for r in rows if row_key(r) == key), None)
                if cached is None or args.recompute:
                    row = {**_row(entrant, set_name, sigma, folder, args.seed), **stamp}
                elif entrant.method == "bm3d" and args.retime_bm3d:
                    row = _retime_bm3d(cached, folder, min(args.retime_bm3d, images))
                    row["retimed_by"] = command
                else:
                    row = cached
                rows = _put(rows, row)
                scored.append(row)
                save_rows(out, rows, set_order=args.sets)
                how = "cached" if row is cached else f"{row['seconds_per_megapixel']:.1f} s/MP"
                print(
                    f"{set_name} σ={sigma:g} ({images} images) {_title(row)}: "
                    f"{row['psnr']:.2f} dB ({how})",
                    flush=True,
                )
    print(f"written {out} and {out.with_suffix('.md')}")
    return 1 if _behind_bm3d(scored) else 0


def _put(rows: list[dict], row: dict) -> list[dict]:
    """``rows`` with ``row`` in place of the row of the same key (appended if none)."""
    key = row_key(row)
    if any(row_key(r) == key for r in rows):
        return [row if row_key(r) == key else r for r in rows]
    return [*rows, row]


def _behind_bm3d(rows: list[dict]) -> list[tuple]:
    """(model, set, σ) where no mode of a treeattn model beat the BM3D row of the same images."""
    best: dict[tuple, float] = {}
    for row in rows:
        if row["method"].startswith("treeattn"):
            key = (row["checksum"], *row_group(row))
            best[key] = max(best.get(key, -float("inf")), row["psnr"])
    refs = {row_group(r): r["psnr"] for r in rows if r["method"] == "bm3d"}
    return [key for key, psnr in best.items() if key[1:] in refs and psnr <= refs[key[1:]]]


if __name__ == "__main__":
    sys.exit(main())
