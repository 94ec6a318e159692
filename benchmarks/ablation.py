"""Tree-depth / information-flow ablation: small gray denoisers trained through the engine.

Every row trains the same small U-shape denoiser (gray, AWGN σ = 25, Train400, one budget of
steps, batch, patch and seed) with one thing changed — tree depth 1/2/3, with or without L3,
variant v1/v2/v3/v4, a Swin window-8 baseline — plus two more seeds of the default, so the seed
spread is known. Each row is evaluated on Set12 and BSD68 and records parameters, MACs at 256²,
training wall time, final PSNR/SSIM and a validation curve (on the embedded Set12 crops, cheap
enough to draw often). Results go to one JSON file with the exact command; rows already in it are
skipped, so the grid can run in pieces. Each row's final weights are saved as float16
safetensors next to it (for the gradient receptive-field maps of ``notebooks/depth_ablation``)::

    python benchmarks/ablation.py                        # the whole grid (≈1.5 h on 2 cores)
    python benchmarks/ablation.py --rows depth1 depth3   # some rows (others stay as they are)
    python benchmarks/ablation.py --measure              # seconds per step of each row
    python benchmarks/ablation.py --quick                # every row, 2 steps, embedded data

The long budget (issue 18; ``ablation_long.py``): 5× the steps, several seeds, Urban100, paired
intervals; a pilot first plans steps × seeds for the power wanted::

    python benchmarks/ablation.py --pilot --work ../runs/ablation_pilot   # prints the command
    python benchmarks/ablation.py --budget long --work ../runs/ablation_long   # the defaults

Training runs through :mod:`treeattn.engine` with the task of ``recipes/denoise.py``:
``parse_config`` → ``prepare_run`` → ``fit`` → ``final_report``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from treeattn.analysis import count_macs, count_parameters
from treeattn.data.embedded import test_dir
from treeattn.engine import TaskSpec, fit, parse_config, prepare_run
from treeattn.engine.curves import read_log
from treeattn.engine.data import build_data
from treeattn.engine.report import final_report
from treeattn.models import create_model, model_config

__all__ = ["ROWS", "Row", "main", "run_row"]

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"

#: The grid's base: ``hiir_unet_tiny`` cut to three levels with two layers each, so that four
#: tree layers work at full resolution (the weights stay ≈0.7 MB in float16).
BASE = MappingProxyType(
    {
        "dims": (16, 32, 64),
        "depths": (2, 2, 2),
        "decoder_depths": (2, 2),
        "num_heads": (1, 2, 4),
        "patch_sizes": ((8, 32), (8, 32), (8, 16)),
    }
)
_DEPTH1 = tuple(tree[:1] for tree in BASE["patch_sizes"])
_DEPTH3 = tuple((*tree, 2 * tree[-1]) for tree in BASE["patch_sizes"])  # as the registry's tree3

#: The grid's one budget. The steps were set from ``--measure`` (2 threads, a quiet machine):
#: the ten rows take 5.6 s for one step each (swin8 0.38, depth 1 0.41, depth 2 ≈0.5, depth 3
#: 0.78 s), so 600 steps, the validation curves and the final Set12 + BSD68 evaluations keep
#: the grid near 1.5 h.
SETTINGS = MappingProxyType(
    {
        "sigma": 25,
        "patch_size": 128,  # every row's trees fit the patch at every level: no padding
        "batch_size": 2,
        "lr": 1e-3,
        "warmup_steps": 50,
        "min_lr_ratio": 0.01,
        "max_steps": 600,
        "val_points": 10,
        "threads": 2,
    }
)
#: ``--quick``: every row for 2 steps on the embedded data, for the tests (seconds per row).
QUICK = MappingProxyType(
    {
        **SETTINGS,
        "patch_size": 32,
        "batch_size": 2,
        "warmup_steps": 0,
        "max_steps": 2,
        "val_points": 1,
        "threads": 1,
    }
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One model of the grid.

    Attributes:
        name: Row key in the results file.
        label: What the row changes, for tables and plots.
        group: ``depth``, ``l3``, ``variant``, ``baseline`` or ``seed``.
        model: Registry name the row starts from.
        overrides: Model settings changed from :data:`BASE`.
        depth: Attention levels of the tree (``None`` for the window baseline).
        seed: Training seed.
    """

    name: str
    label: str
    group: str
    model: str = "hiir_unet_tiny"
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    depth: int | None = 2
    seed: int = 0

    def model_settings(self) -> dict[str, Any]:
        """The base plus this row's changes (a window baseline reads no trees)."""
        settings = {**BASE, **self.overrides}
        if model_config(self.model).layer_type != "hiir":
            settings.pop("patch_sizes")
        return settings


ROWS: tuple[Row, ...] = (
    Row(name="depth2", label="depth 2 (L1+L2, v3, default)", group="depth"),
    Row(
        name="depth1",
        label="depth 1 (isolated windows)",
        group="depth",
        overrides={"patch_sizes": _DEPTH1},
        depth=1,
    ),
    Row(
        name="depth3",
        label="depth 3 (three attention levels)",
        group="depth",
        overrides={"patch_sizes": _DEPTH3},
        depth=3,
    ),
    Row(name="no_l3", label="without L3 (MLP FFN)", group="l3", overrides={"ffn_type": "mlp"}),
    Row(name="v1", label="v1 (alternating levels)", group="variant", overrides={"variant": "v1"}),
    Row(name="v2", label="v2 (two full attentions)", group="variant", overrides={"variant": "v2"}),
    Row(
        name="v4",
        label="v4 (3-level tree)",
        group="variant",
        overrides={"variant": "v4", "patch_sizes": _DEPTH3},
        depth=3,
    ),
    Row(
        name="swin8",
        label="Swin window 8 (shifted)",
        group="baseline",
        model="swin_unet_tiny",
        overrides={"window_size": 8},
        depth=None,
    ),
    Row(name="depth2_seed1", label="depth 2, seed 1", group="seed", seed=1),
    Row(name="depth2_seed2", label="depth 2, seed 2", group="seed", seed=2),
)
_BY_NAME = {row.name: row for row in ROWS}


def _denoise_spec() -> TaskSpec:
    """The denoise recipe's task (``recipes/`` is not a package: load the file)."""
    spec = importlib.util.spec_from_file_location("recipe_denoise", ROOT / "recipes" / "denoise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SPEC


def _argv(row: Row, settings: Mapping[str, Any], *, out: Path, quick: bool) -> list[str]:
    steps = settings["max_steps"]
    argv = ["--channels", "1", "--sigma", str(settings["sigma"]), "--model", row.model]
    argv += ["--seed", str(row.seed), "--output-dir", str(out), "--save-images", "0"]
    argv += ["--max-minutes", "0", "--threads", str(settings["threads"])]
    argv += ["--val-every", str(max(1, steps // settings["val_points"]))]
    argv += ["--log-every", str(max(1, steps // 50)), "--no-with-tracking"]
    for key in ("patch_size", "batch_size", "lr", "warmup_steps", "min_lr_ratio", "max_steps"):
        argv += [f"--{key.replace('_', '-')}", str(settings[key])]
    # the curve uses the embedded Set12 crops; the final report the full sets (see run_row)
    argv += ["--test-dir", str(test_dir(color=False))]
    if not quick:
        argv += ["--train-dir", str(DATA / "train" / "Train400")]
    return argv


def _model_stats(row: Row) -> dict[str, int]:
    """Parameters and MACs at 256² (math attention, counted on the meta device)."""
    model = create_model(
        row.model, in_chans=1, out_chans=1, **row.model_settings(), backend="math", device="meta"
    )
    macs = count_macs(model, (256, 256), in_chans=1).total
    return {"params": count_parameters(model), "macs_256": macs}


def _curves(run_dir: Path) -> dict[str, list[dict[str, float]]]:
    """The validation records and the training loss of a run's log."""
    records = read_log(run_dir)
    return {
        "val_curve": [
            {k: v for k, v in r.items() if k != "kind"} for r in records if r["kind"] == "val"
        ],
        "loss_curve": [
            {"step": r["step"], "loss": r["loss"]} for r in records if r["kind"] == "train"
        ],
    }


def _final_tests(quick: bool) -> list[str]:
    if quick:
        return [str(test_dir(color=False))]
    return [str(DATA / "test" / "Set12"), str(DATA / "test" / "BSD68")]


def run_row(
    row: Row, settings: Mapping[str, Any], *, work: Path, weights: Path, quick: bool
) -> dict[str, Any]:
    """Train one row through the engine, evaluate it and save its weights.

    Args:
        row: The row.
        settings: The grid's budget (:data:`SETTINGS` or :data:`QUICK`).
        work: Folder of the engine's run folders (logs, checkpoints, reports).
        weights: Folder of the rows' float16 weights (``<weights>/<row>/``).
        quick: Embedded training data and one embedded test set.

    Returns:
        The row's record for the results file.
    """
    spec = _denoise_spec()
    out = work / row.name
    if out.exists():  # a row restarts from scratch: its log must not hold an earlier attempt
        shutil.rmtree(out)
    cfg = parse_config(spec, _argv(row, settings, out=out, quick=quick))
    cfg = dataclasses.replace(cfg, model_overrides=row.model_settings())
    run = prepare_run(spec, cfg)
    stamps: list[float] = []
    start = time.perf_counter()
    fit(run, on_step_end=lambda _: stamps.append(time.perf_counter()))
    fit_s = time.perf_counter() - start
    # the final report of the same run, on the full test sets
    final = dataclasses.replace(cfg, test_dir=_final_tests(quick))
    tests = build_data(spec, final, scale=run.eval_model.meta.scale).tests
    final_run = dataclasses.replace(run, cfg=final, data=dataclasses.replace(run.data, tests=tests))
    start = time.perf_counter()
    means = final_report(final_run)
    eval_s = time.perf_counter() - start
    model = final_run.eval_model
    model.to(torch.float16).save_pretrained(weights / row.name)
    return {
        "label": row.label,
        "group": row.group,
        "model": row.model,
        "overrides": json.loads(json.dumps(row.model_settings())),  # tuples as lists
        "depth": row.depth,
        "seed": row.seed,
        **_model_stats(row),
        "train_s": round(_train_seconds(stamps, every=cfg.val_every), 1),
        "fit_s": round(fit_s, 1),
        "eval_s": round(eval_s, 1),
        "steps": run.progress.step,
        "test": {name: {k: round(v, 4) for k, v in m.items()} for name, m in means.items()},
        **_curves(out),
        "weights": f"{weights.name}/{row.name}",  # relative to the results file's folder
    }


def _train_seconds(stamps: list[float], *, every: int) -> float:
    """Training time without the validations.

    ``stamps[k - 1]`` is the end of step ``k``; a step that validated (every ``every`` steps and
    the last) and the first step (no start stamp) count as the median of the other steps.
    """
    last = len(stamps)
    plain = [
        stamps[k - 1] - stamps[k - 2]
        for k in range(2, last)
        if k % every  # not validating
    ]
    if not plain:  # too few steps to tell training from validation
        return stamps[-1] - stamps[0] if stamps else 0.0
    return sum(plain) + statistics.median(plain) * (last - len(plain))


def measure(rows: Sequence[Row], settings: Mapping[str, Any], *, steps: int = 3) -> dict:
    """Seconds per training step (forward, backward, AdamW) of each row: the median of ``steps``
    steps after one warm-up step each, the rows interleaved step by step (ABC ABC ...) so that a
    machine speeding up or slowing down moves every row alike.

    Runs with the grid's threads, batch and patch, on random data: a quick basis for
    :data:`SETTINGS` ``max_steps`` (a busy machine makes it slower, never faster).
    """
    torch.set_num_threads(settings["threads"])
    shape = (settings["batch_size"], 1, settings["patch_size"], settings["patch_size"])
    x = torch.rand(shape)
    models = {
        row.name: create_model(row.model, in_chans=1, out_chans=1, **row.model_settings())
        for row in rows
    }
    optimizers = {name: torch.optim.AdamW(model.parameters()) for name, model in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(steps + 1):
        for name, model in models.items():
            begin = time.perf_counter()
            (model(x) - x).abs().mean().backward()
            optimizers[name].step()
            optimizers[name].zero_grad()
            times[name].append(time.perf_counter() - begin)
    result = {name: statistics.median(values[1:]) for name, values in times.items()}
    for name, seconds in result.items():
        print(f"{name:<14} {seconds:.2f} s/step", flush=True)
    return result


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"meta": {}, "rows": {}}


def _save(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(results, indent=1) + "\n")
    partial.replace(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", choices=list(_BY_NAME), help="rows to run (all)")
    parser.add_argument("--quick", action="store_true", help="2 steps per row on embedded data")
    parser.add_argument("--measure", action="store_true", help="time a few steps of each row")
    parser.add_argument("--steps", type=int, help="override the steps per row")
    parser.add_argument("--results", type=Path, help="results JSON (default benchmarks/results/)")
    parser.add_argument("--work", type=Path, help="engine run folders (default outputs/<stem>)")
    long = parser.add_argument_group("long budget (ablation_long.py)")
    long.add_argument(
        "--budget",
        choices=("short", "long"),
        default="short",
        help="the 600-step grid or the long study",
    )
    long.add_argument("--seeds", nargs="+", metavar="ROW=N", help="seeds 0..N-1 of a row")
    long.add_argument(
        "--patch-schedule", nargs="+", metavar="TOKEN", help="crop schedule for the engine's flag"
    )
    long.add_argument("--pilot", action="store_true", help="two depth2 runs, then plan the study")
    long.add_argument("--pilot-steps", type=int, help="steps of each pilot run (1000)")
    long.add_argument("--hours", type=float, default=7.0, help="CPU budget of pilot + study")
    long.add_argument("--target", type=float, default=0.1, help="interval half-width to reach, dB")
    long.add_argument("--seed-sd", type=float, help="plan with this seed sd (dB), not the pilot's")
    return parser


def _long_only(args: argparse.Namespace) -> list[str]:
    """The long-budget flags given to a short-budget run."""
    given = {
        "--seeds": args.seeds,
        "--patch-schedule": args.patch_schedule,
        "--pilot-steps": args.pilot_steps,
        "--seed-sd": args.seed_sd,
    }
    return [flag for flag, value in given.items() if value is not None]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the grid; returns the results."""
    args = build_parser().parse_args(argv)
    for flag in ("steps", "pilot_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SystemExit(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    command = shlex.join(["python", "benchmarks/ablation.py", *(argv or sys.argv[1:])])
    if args.pilot or args.budget == "long":
        import ablation_long  # the long study builds on this module

        other = [r for r in args.rows or () if _BY_NAME[r].group == "seed"]
        if other:
            raise SystemExit(f"--rows {other}: the long study gives seeds with --seeds, not rows")
        return ablation_long.run(args, command=command)
    if _long_only(args):
        raise SystemExit(f"{', '.join(_long_only(args))} belong to --budget long or --pilot")
    settings = dict(QUICK if args.quick else SETTINGS)
    if args.steps is not None:
        settings["max_steps"] = args.steps
    rows = [_BY_NAME[name] for name in args.rows] if args.rows else list(ROWS)
    if args.measure:
        return measure(rows, settings)
    stem = "ablation_quick" if args.quick else "ablation"
    path = args.results or RESULTS / f"{stem}.json"
    weights = path.parent / path.stem
    work = args.work or ROOT / "outputs" / stem
    results = _load(path)
    if results["meta"] and results["meta"]["settings"] != settings:
        raise SystemExit(
            f"{path} was made with other settings ({results['meta']['settings']}); "
            "give another --results file or delete it"
        )
    results["meta"] = {
        "settings": settings,
        "commands": sorted({*results["meta"].get("commands", []), command}),
        "task": "gray denoising, AWGN sigma 25",
        "train": "embedded gray_train" if args.quick else "Train400",
        "curve": "embedded gray_test (Set12 crops)",
        "torch": torch.__version__,
        "cores": os.cpu_count(),
    }
    for row in rows:
        if row.name in results["rows"]:
            print(f"{row.name}: already in {path}, skipped", flush=True)
            continue
        record = run_row(row, settings, work=work, weights=weights, quick=args.quick)
        record["command"] = command
        results["rows"][row.name] = record
        _save(path, results)
        psnr = {name: m["psnr"] for name, m in record["test"].items()}
        print(f"{row.name}: {psnr}, {record['train_s']} s training", flush=True)
    _save(path, results)
    return results


if __name__ == "__main__":
    main()
