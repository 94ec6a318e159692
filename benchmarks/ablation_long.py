"""The long-budget depth study (issue 18): seeds, Urban100, resumable runs, a pilot and its plan.

Run through ``benchmarks/ablation.py --budget long`` (the study) and ``--pilot`` (the power
pilot); see ``docs/ablation.md``. The 600-step grid (``ablation.json``) stays as it is, the short
budget's record. What the long budget changes:

* rows ``depth1``, ``depth2``, ``depth3``, ``swin8``, ``no_l3`` (the grid's definitions), several
  seeds each (:data:`MIN_SEEDS` at least), :data:`LONG` steps (5× the grid's training pixels),
  the grid's 128² crops: the deepest tree's largest region (64 px at level 1 of the half-size map,
  32 px at level 2 of the quarter-size map) spans 128 px, the whole crop, in every row;
* every run checkpoints every ``checkpoint_every`` steps and resumes from its latest checkpoint, so
  the study may be stopped at any time; a finished run is recorded (and never retrained) seed by
  seed in ``ablation_long.json``, with its command and hardware;
* validation curves on the embedded Set12 crops and on centred 256² crops of Urban100 images
  091-100, each point with the training seconds reached (validations and checkpoints left out),
  for the comparison at equal wall time (``ablation_cost.py``);
* the final evaluation on Set12, BSD68 and ``Urban100_40`` (:data:`URBAN_REPORT`, images
  001-040 whole; the pilot scored 001-020) keeps per-image PSNR/SSIM, which the paired intervals
  of ``ablation_stats.py`` need. Urban100's per-image spread is the widest, so the study scores
  twice the pilot's images there (the plan counts the extra evaluation time).

The pilot trains ``depth2`` with seeds 0 and 1 for :data:`PILOT_STEPS` steps under the long
settings, times ten steps of every row (interleaved), and plans steps × seeds within the CPU budget
(:func:`ablation_stats.plan_study`); it prints the study's command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import ablation
import ablation_stats
import numpy as np
import torch
import urban_split
from benchlib import cpu_model
from PIL import Image

from treeattn.data.embedded import test_dir
from treeattn.engine import Run, TrainConfig, fit, parse_config, prepare_run
from treeattn.engine.curves import read_log
from treeattn.engine.data import build_data
from treeattn.engine.report import final_report

__all__ = [
    "COMPARISONS",
    "LONG",
    "LONG_QUICK",
    "LONG_ROWS",
    "MIN_SEEDS",
    "PILOT_STEPS",
    "PILOT_URBAN_IMAGES",
    "POST_HOC_COMPARISONS",
    "URBAN_REPORT",
    "URBAN_VAL",
    "StepClock",
    "hardware",
    "pilot_plan",
    "run",
    "run_long",
]

#: The rows of the long study (definitions: :data:`ablation.ROWS`).
LONG_ROWS = ("depth1", "depth2", "depth3", "swin8", "no_l3")
#: Least seeds per row: two wherever a main comparison rests on the row.
MIN_SEEDS = MappingProxyType({"depth1": 2, "depth2": 2, "depth3": 1, "swin8": 2, "no_l3": 1})
#: ``(A, B, what A − B tests, the sign the paper's claim expects or None)``.
COMPARISONS = (
    ("depth2", "depth1", "L2 on top of isolated windows (hierarchy)", "higher"),
    ("depth3", "depth2", "a third attention level", None),
    ("depth2", "no_l3", "L3 (gated depthwise-conv FFN) instead of an MLP", "higher"),
    ("depth2", "swin8", "the tree against Swin window-8 layers", "higher"),
)
#: Comparisons added after the study had run, to separate the attention from the FFN in
#: ``depth2 − swin8`` (Swin's layers have an MLP, like ``no_l3``): reported with the others, but
#: not part of the power plan (:func:`pilot_plan` plans :data:`COMPARISONS` only).
POST_HOC_COMPARISONS = (
    # no expected sign: the paper has no such comparison
    ("no_l3", "swin8", "tree vs Swin windows, both with an MLP (post hoc)", None),
)
#: Training pixels of one run of the short grid (600 steps × 2 × 128²).
SHORT_PIXELS = (
    ablation.SETTINGS["max_steps"]
    * ablation.SETTINGS["batch_size"]
    * ablation.SETTINGS["patch_size"] ** 2
)
#: The long budget: the grid's settings with 5× the steps (so 5× the training pixels), more
#: validation points for the wall-time curves, checkpoints for resuming, and an optional crop
#: schedule passed to the engine's ``--patch-schedule`` (``None``: the fixed 128² crop).
LONG = MappingProxyType(
    {
        **ablation.SETTINGS,
        "max_steps": 5 * ablation.SETTINGS["max_steps"],
        "val_points": 12,
        "checkpoint_every": 200,
        "patch_schedule": None,
        "urban_images": 40,
    }
)
#: ``--budget long --quick``: a few steps on the embedded data, for the tests.
LONG_QUICK = MappingProxyType(
    {
        **ablation.QUICK,
        "val_points": 1,
        "checkpoint_every": 1,
        "patch_schedule": None,
        "urban_images": None,
    }
)
#: Steps of each of the pilot's two runs (under the long settings otherwise).
PILOT_STEPS = 1000
#: Urban100 images the pilot scores (``urban_split.REPORT``).
PILOT_URBAN_IMAGES = 20
#: The study's Urban100 report subset (whole images; the same noise as when the whole folder is
#: scored).
URBAN_REPORT = urban_split.report(LONG["urban_images"])
#: Urban100 images whose centred crops validate during training (never reported on).
URBAN_VAL = urban_split.VALIDATION
URBAN_CROP = urban_split.CROP
URBAN100 = ablation.DATA / "test" / "Urban100"
BUDGET_HOURS = 7.0
TARGET_DB = 0.1


def hardware() -> dict[str, Any]:
    """Where this process runs: CPU model, cores, accelerator, torch, threads and the load."""
    accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "accelerator": accelerator,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


class StepClock:
    """Wall time of every training step of one run, across resumptions (``timing.json``).

    A step that validated or checkpointed, the last one, and the first step of every segment (no
    start stamp) count as the median of the plain steps; so do steps whose time was lost (a run
    killed after a checkpoint but before this file was updated). The file is written at every
    checkpoint step, after the checkpoint, so it never runs ahead of the run.

    Args:
        path: The run's ``timing.json``.
        step: The step the run starts (or resumes) at.
        cfg: The run's settings (``val_every``, ``checkpointing_steps``, ``max_steps``).
    """

    def __init__(self, path: Path, *, step: int, cfg: TrainConfig) -> None:
        saved = json.loads(path.read_text()) if path.is_file() else {"durations": [], "busy": []}
        kept = saved["durations"][:step]
        self.path, self.cfg = path, cfg
        self.durations: list[float | None] = kept + [None] * (step - len(kept))
        self.busy = {s for s in saved["busy"] if s <= step} | {step + 1}
        self.segments = saved.get("segments", 0) + 1
        self.last = time.perf_counter()

    def tick(self, run: Run) -> None:
        """Record the step just done (``fit``'s ``on_step_end``)."""
        now, step = time.perf_counter(), run.progress.step
        self.durations.append(now - self.last)
        self.last = now
        cfg = self.cfg
        checkpoint = step % cfg.checkpointing_steps == 0 or step == cfg.max_steps
        if checkpoint or step % cfg.val_every == 0:
            self.busy.add(step)
        if checkpoint:
            self.save()

    def save(self) -> None:
        """Write ``timing.json``."""
        busy = sorted(self.busy)
        record = {"durations": self.durations, "busy": busy, "segments": self.segments}
        self.path.write_text(json.dumps(record) + "\n")

    def filled(self) -> list[float]:
        """Per-step training seconds, the busy and lost steps as the median plain step."""
        plain = [d for s, d in enumerate(self.durations, 1) if d is not None and s not in self.busy]
        known = [d for d in self.durations if d is not None]
        # without plain steps (a run of a few steps) the quickest step is the best guess
        typical = statistics.median(plain) if plain else min(known, default=0.0)
        return [
            typical if d is None or s in self.busy else d for s, d in enumerate(self.durations, 1)
        ]

    def train_seconds(self, step: int | None = None) -> float:
        """Training seconds up to ``step`` (all steps by default)."""
        return float(sum(self.filled()[:step]))

    def other_seconds(self) -> float:
        """Measured wall time beyond the training steps: validations and checkpoints."""
        pairs = zip(self.durations, self.filled(), strict=True)
        known = [(d, f) for d, f in pairs if d is not None]
        return float(sum(d - f for d, f in known))


def _urban_folders(work: Path, count: int) -> tuple[Path, Path]:
    """``<work>/data/Urban100_<count>`` (links to the first ``count`` images) and
    ``Urban100_val`` (crops)."""
    data = work / "data"
    try:
        names = urban_split.report(count)
        report = urban_split.link_report(URBAN100, data / f"Urban100_{count}", names)
        urban_split.write_validation(URBAN100, data / "Urban100_val")
    except FileNotFoundError as err:
        raise SystemExit(f"{err}: the long study needs Urban100 there") from err
    return report, data / "Urban100_val"


def _sets(work: Path, *, quick: bool, urban_images: int) -> tuple[list[str], list[str]]:
    """(validation folders, final test folders) of the long study."""
    embedded = str(test_dir(color=False))
    if quick:
        return [embedded], [embedded]
    report, val = _urban_folders(work, urban_images)
    tests = [str(ablation.DATA / "test" / name) for name in ("Set12", "BSD68")] + [str(report)]
    return [embedded, str(val)], tests


def _argv(
    row: ablation.Row, settings: Mapping[str, Any], *, out: Path, vals: list[str], quick: bool
) -> list[str]:
    argv = ablation._argv(row, settings, out=out, quick=quick)
    cut = argv.index("--test-dir")
    argv[cut : cut + 2] = ["--test-dir", *vals]
    argv += ["--checkpointing-steps", str(settings["checkpoint_every"]), "--keep-checkpoints", "1"]
    argv += ["--resume-from-checkpoint", "latest"]
    if settings["patch_schedule"]:
        if "patch_schedule" not in {f.name for f in dataclasses.fields(TrainConfig)}:
            raise SystemExit(
                "this engine has no --patch-schedule: drop --patch-schedule (the fixed "
                f"{settings['patch_size']}² crop) or run on a checkout whose engine has it"
            )
        argv += ["--patch-schedule", *settings["patch_schedule"]]
    return argv


def _long_curves(out: Path, clock: StepClock) -> dict[str, list[dict[str, float]]]:
    """Validation and loss records of a run's log, one per step (a resumed run logs a step again:
    the last record wins), each validation point with the training seconds it was reached at."""
    latest: dict[tuple[str, int], dict] = {}
    for record in read_log(out):
        latest[record["kind"], record["step"]] = record
    filled = clock.filled()
    val, loss = [], []
    for (kind, step), record in sorted(latest.items(), key=lambda item: item[0][1]):
        if kind == "val" and step <= len(filled):
            values = {k: v for k, v in record.items() if k not in ("kind", "time_s")}
            val.append({**values, "train_time_s": round(sum(filled[:step]), 2)})
        elif kind == "train":
            loss.append({"step": step, "loss": record["loss"]})
    return {"val_curve": val, "loss_curve": loss}


def _per_image(report: Path, name: str) -> dict[str, list]:
    rows = json.loads((report / f"{name}.json").read_text())["rows"]
    return {
        "names": [row["name"] for row in rows],
        "psnr": [round(row["psnr"], 4) for row in rows],
        "ssim": [round(row["ssim"], 5) for row in rows],
    }


def run_long(
    row: ablation.Row, settings: Mapping[str, Any], *, work: Path, weights: Path, quick: bool
) -> dict[str, Any]:
    """Train (or resume) one seed of one row, evaluate it and save its float16 weights.

    Args:
        row: The row, its ``seed`` set to the run's.
        settings: :data:`LONG`, :data:`LONG_QUICK` or the pilot's.
        work: Folder of the engine's run folders (``<work>/<row>_seed<k>/``) and the Urban100
            folders (``<work>/data/``).
        weights: Folder of the runs' float16 weights.
        quick: Embedded training data and the embedded test set only.

    Returns:
        The run's record for the results file.
    """
    spec = ablation._denoise_spec()
    name = f"{row.name}_seed{row.seed}"
    out = work / name
    vals, tests = _sets(work, quick=quick, urban_images=settings["urban_images"])
    cfg = parse_config(spec, _argv(row, settings, out=out, vals=vals, quick=quick))
    cfg = dataclasses.replace(cfg, model_overrides=row.model_settings())
    run = prepare_run(spec, cfg)
    clock = StepClock(out / "timing.json", step=run.progress.step, cfg=cfg)
    fit(run, on_step_end=clock.tick)
    final = dataclasses.replace(cfg, test_dir=tests)
    sets = build_data(spec, final, scale=run.eval_model.meta.scale).tests
    final_run = dataclasses.replace(run, cfg=final, data=dataclasses.replace(run.data, tests=sets))
    start = time.perf_counter()
    means = final_report(final_run)
    eval_s = time.perf_counter() - start
    final_run.eval_model.to(torch.float16).save_pretrained(weights / name)
    report = out / "report"
    train_s = clock.train_seconds()
    return {
        "seed": row.seed,
        "steps": run.progress.step,
        "train_s": round(train_s, 1),
        "s_per_step": round(train_s / max(1, run.progress.step), 4),
        "val_ckpt_s": round(clock.other_seconds(), 1),
        "eval_s": round(eval_s, 1),
        "segments": clock.segments,
        "test": {test: {k: round(v, 4) for k, v in m.items()} for test, m in means.items()},
        "per_image": {test: _per_image(report, test) for test in means},
        **_long_curves(out, clock),
        "weights": f"{weights.name}/{name}",
        "hardware": hardware(),
    }


def _row_record(row: ablation.Row) -> dict[str, Any]:
    stats = ablation._model_stats(row)
    return {
        "label": row.label,
        "group": row.group,
        "model": row.model,
        "overrides": json.loads(json.dumps(row.model_settings())),
        "depth": row.depth,
        **stats,
        "macs_per_pixel": round(stats["macs_256"] / 256**2),
        "seeds": {},
    }


def _train(
    plan: Mapping[str, int],
    settings: Mapping[str, Any],
    *,
    path: Path,
    work: Path,
    results: dict[str, Any],
    command: str,
    quick: bool,
) -> dict[str, Any]:
    """Run every missing ``(row, seed)`` of ``plan`` (``{row: seeds}``), saving after each.

    Seed by seed across the rows (seed 0 of every row, then seed 1, ...): a study stopped early
    holds every row once before any row twice, and no row without a finished run.
    """
    weights, rows = path.parent / path.stem, results["rows"]
    for seed in range(max(plan.values(), default=0)):
        for name in (name for name, seeds in plan.items() if seed < seeds):
            if str(seed) in rows.get(name, {}).get("seeds", {}):
                print(f"{name} seed {seed}: already in {path}, skipped", flush=True)
                continue
            row = dataclasses.replace(ablation._BY_NAME[name], seed=seed)
            done = run_long(row, settings, work=work, weights=weights, quick=quick)
            done["command"] = command
            # a row enters the file with its first finished run: a study stopped early holds
            # only rows with runs
            record = rows.setdefault(name, _row_record(ablation._BY_NAME[name]))
            record["seeds"][str(seed)] = done
            record["seeds"] = dict(sorted(record["seeds"].items(), key=lambda kv: int(kv[0])))
            ablation._save(path, results)
            psnr = {test: m["psnr"] for test, m in done["test"].items()}
            print(f"{name} seed {seed}: {psnr}, {done['s_per_step']} s/step", flush=True)
    ablation._save(path, results)
    return results


def _open(path: Path, settings: Mapping[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The results file at ``path`` (new or made with the same settings) with ``meta`` merged."""
    results = ablation._load(path)
    old = results["meta"]
    if old and old["settings"] != settings:
        raise SystemExit(
            f"{path} was made with other settings ({old['settings']}); "
            "give another --results file or delete it"
        )
    meta["commands"] = sorted({*old.get("commands", []), *meta["commands"]})
    results["meta"] = {**old, **meta}
    return results


def _meta(settings: Mapping[str, Any], *, command: str, quick: bool) -> dict[str, Any]:
    pixels = settings["max_steps"] * settings["batch_size"] * settings["patch_size"] ** 2
    curve = "embedded gray_test (Set12 crops)"
    tests = "embedded gray_test"
    urban = {}
    if not quick:
        names = urban_split.report(settings["urban_images"])
        curve += f"; Urban100_val: centred {URBAN_CROP}² crops of {URBAN_VAL[0]}-{URBAN_VAL[-1]}"
        tests = f"Set12, BSD68, Urban100_{len(names)} ({names[0]}-{names[-1]}, whole images)"
        urban = {"urban100_report": list(names)}
    return {
        **urban,
        "settings": dict(settings),
        "commands": [command],
        "task": "gray denoising, AWGN sigma 25",
        "train": "embedded gray_train" if quick else "Train400",
        "curve": curve,
        "tests": tests,
        "pixels_per_run": pixels,
        "pixels_vs_short_budget": round(pixels / SHORT_PIXELS, 2),
        "comparisons": [list(c) for c in (*COMPARISONS, *POST_HOC_COMPARISONS)],
        "hardware": hardware(),
    }


def _noise(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Seed and per-image spread of each test set from two (or more) runs of one row."""
    noise = {}
    for test in runs[0]["test"]:
        means = [run["test"][test]["psnr"] for run in runs]
        scores = [ablation_stats.run_scores(run, test) for run in runs[:2]]
        differences = ablation_stats.paired_differences(scores[:1], scores[1:])
        noise[test] = {
            "seed_sd": statistics.stdev(means),
            "image_sd": float(np.std(differences, ddof=1)),
            "images": len(differences),
        }
    return noise


def _megapixels(test: str, names: Sequence[str]) -> float:
    """Megapixels of the images ``names`` (file stems) of one test set of the study."""
    folder = URBAN100 if test.startswith("Urban100_") else ablation.DATA / "test" / test
    total = 0
    for name in names:
        with Image.open(folder / f"{Path(name).stem}.png") as image:
            total += image.width * image.height
    return total / 1e6


def _study_urban(
    runs: Sequence[Mapping[str, Any]], noise: dict[str, dict[str, float]], images: int | None
) -> tuple[dict[str, dict[str, float]], float]:
    """The pilot's noise with its Urban100 subset taken as the study's ``images`` (the same
    per-image spread), and the evaluation seconds per run the extra images add (the pilot's
    seconds per megapixel over all its test images). Without either, ``noise`` and 0."""
    pilot = next((test for test in noise if test.startswith("Urban100_")), None)
    if images is None or pilot is None or images == noise[pilot]["images"]:
        return noise, 0.0
    study = f"Urban100_{images}"
    tables = runs[0]["per_image"]
    pilot_mp = sum(_megapixels(test, table["names"]) for test, table in tables.items())
    added = _megapixels(pilot, urban_split.report(images)) - _megapixels(
        pilot, tables[pilot]["names"]
    )
    rate = statistics.fmean(run["eval_s"] for run in runs) / pilot_mp
    scaled = {
        (study if test == pilot else test): ({**n, "images": images} if test == pilot else n)
        for test, n in noise.items()
    }
    return scaled, rate * added


def pilot_plan(
    pilot: Mapping[str, Any],
    seconds_per_step: Mapping[str, float],
    *,
    macs: Mapping[str, int],
    budget_s: float,
    step_options: Sequence[int],
    target: float = TARGET_DB,
    seed_sd: float | None = None,
    urban_images: int | None = None,
) -> tuple[ablation_stats.Plan, dict[str, Any]]:
    """The study's plan from the pilot's runs of ``depth2`` and timed steps of every row.

    A timed step (random data, no loader, no logging) runs faster than a step of the engine; the
    rows' times are scaled by the pilot's ratio ``engine s/step ÷ timed s/step`` of ``depth2``.
    Validation, checkpoint and evaluation time per run is the pilot's, scaled by MACs; a study
    scoring more Urban100 images than the pilot adds their evaluation time (the pilot's seconds
    per megapixel) and plans with their count (the pilot's per-image spread).

    Args:
        pilot: The pilot's results (``rows.depth2.seeds`` holds at least two runs).
        seconds_per_step: Timed seconds per step of every row of the study.
        macs: MACs per pixel of every row.
        budget_s: CPU seconds the study may take.
        step_options: Step counts to consider.
        target: Interval half-width to reach (dB).
        seed_sd: Seed standard deviation to plan with instead of the pilot's (dB, every set).
        urban_images: Urban100 images the study scores (``None``: as many as the pilot).

    Returns:
        The plan and what it was computed from.

    Raises:
        ValueError: The pilot holds fewer than two runs of ``depth2``.
    """
    runs = list(pilot["rows"].get("depth2", {}).get("seeds", {}).values())
    if len(runs) < 2:
        raise ValueError("the pilot needs two runs of depth2 (seeds 0 and 1); run --pilot first")
    engine = statistics.fmean(run["s_per_step"] for run in runs)
    scale = engine / seconds_per_step["depth2"]
    per_step = {row: seconds * scale for row, seconds in seconds_per_step.items()}
    noise, added_eval_s = _study_urban(runs, _noise(runs), urban_images)
    overhead = statistics.fmean(run["val_ckpt_s"] + run["eval_s"] for run in runs) + added_eval_s
    overhead_s = {row: overhead * macs[row] / macs["depth2"] for row in seconds_per_step}
    if seed_sd is not None:
        noise = {test: {**n, "seed_sd": seed_sd} for test, n in noise.items()}
    plan = ablation_stats.plan_study(
        seconds_per_step=per_step,
        overhead_s=overhead_s,
        noise=noise,
        comparisons=[(a, b) for a, b, *_ in COMPARISONS if {a, b} <= set(seconds_per_step)],
        min_seeds={row: MIN_SEEDS.get(row, 1) for row in seconds_per_step},
        step_options=step_options,
        budget_s=budget_s,
        target=target,
    )
    inputs = {
        "engine_vs_timed": round(scale, 3),
        "seconds_per_step": {row: round(s, 4) for row, s in per_step.items()},
        "overhead_s": {row: round(s, 1) for row, s in overhead_s.items()},
        "noise": noise,
        "urban_eval_s_added": round(added_eval_s, 1),
        "budget_s": round(budget_s),
        "target_db": target,
    }
    return plan, inputs


def _pilot_spent(pilot: Mapping[str, Any]) -> float:
    runs = [run for row in pilot["rows"].values() for run in row["seeds"].values()]
    return sum(run["train_s"] + run["val_ckpt_s"] + run["eval_s"] for run in runs)


def _study_command(plan: ablation_stats.Plan, *, quick: bool, work: str) -> str:
    argv = ["python", "benchmarks/ablation.py", "--budget", "long", "--steps", str(plan.steps)]
    argv += ["--seeds", *(f"{row}={n}" for row, n in plan.seeds.items())]
    argv += ["--quick"] if quick else []
    return shlex.join([*argv, "--work", work])


def _print_plan(plan: ablation_stats.Plan, inputs: Mapping[str, Any], command: str) -> None:
    print("\npilot: seed and image spread (dB), per test set")
    for test, n in inputs["noise"].items():
        print(
            f"  {test:<12} seed sd {n['seed_sd']:.3f}  per-image sd {n['image_sd']:.3f}  "
            f"({n['images']} images)"
        )
    print(f"engine s/step = {inputs['engine_vs_timed']:.2f} × timed s/step")
    for row, seconds in inputs["seconds_per_step"].items():
        print(
            f"  {row:<8} {seconds:.3f} s/step, {inputs['overhead_s'][row]:.0f} s per run "
            f"beyond training, {plan.seeds[row]} seed(s)"
        )
    state = "meets" if plan.meets_target else "does NOT meet"
    print(
        f"\nplan: {plan.steps} steps, {sum(plan.seeds.values())} runs, "
        f"{plan.seconds / 3600:.2f} h of the {inputs['budget_s'] / 3600:.2f} h left; "
        f"{state} the {inputs['target_db']} dB target (worst half-width {plan.worst:.3f} dB)"
    )
    for pair, width in plan.half_widths.items():
        sets = ", ".join(f"{test} {w:.3f}" for test, w in plan.by_set[pair].items())
        print(f"  {pair:<16} 95 % half-width ≈ {width:.3f} dB ({sets})")
    print(f"\nrun the study with:\n  {command}")


def _seeds(items: Sequence[str] | None, rows: Sequence[str]) -> dict[str, int]:
    seeds = {row: MIN_SEEDS.get(row, 1) for row in rows}
    for item in items or ():
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"--seeds {item!r} must look like ROW=N with N >= 1, e.g. depth2=3")
        if name not in seeds:
            raise SystemExit(f"--seeds {item!r}: {name} is not a row of this run ({list(seeds)})")
        seeds[name] = int(count)
    return seeds


def run(args: argparse.Namespace, *, command: str) -> dict[str, Any]:
    """``ablation.py --budget long`` and ``--pilot``: parsed arguments, the exact command."""
    quick = args.quick
    settings = dict(LONG_QUICK if quick else LONG)
    if args.steps is not None:
        settings["max_steps"] = args.steps
    if args.patch_schedule:
        settings["patch_schedule"] = list(args.patch_schedule)
    rows = args.rows or list(LONG_ROWS)
    if args.measure:
        return ablation.measure([ablation._BY_NAME[r] for r in rows], settings)
    stem = "ablation_pilot" if args.pilot else "ablation_long"
    stem += "_quick" if quick else ""
    path = args.results or ablation.RESULTS / f"{stem}.json"
    work = args.work or ablation.ROOT / "outputs" / stem
    if args.pilot:
        return _pilot(args, settings, rows=rows, path=path, work=work, command=command)
    pixels = settings["max_steps"] * settings["batch_size"] * settings["patch_size"] ** 2
    if not quick and pixels < 5 * SHORT_PIXELS:
        print(f"note: {pixels / SHORT_PIXELS:.1f}× the short budget's training pixels (< 5×)")
    results = _open(path, settings, _meta(settings, command=command, quick=quick))
    plan = _seeds(args.seeds, rows)
    return _train(
        plan, settings, path=path, work=work, results=results, command=command, quick=quick
    )


def _pilot(
    args: argparse.Namespace,
    settings: dict[str, Any],
    *,
    rows: Sequence[str],
    path: Path,
    work: Path,
    command: str,
) -> dict[str, Any]:
    """Train the pilot's two runs (resumable), time every row, plan and print the study."""
    if "depth2" not in rows:
        raise SystemExit("--pilot times the rows against depth2: keep depth2 in --rows")
    quick, study_steps, study_urban = args.quick, settings["max_steps"], settings["urban_images"]
    settings["max_steps"] = args.pilot_steps or (study_steps if quick else PILOT_STEPS)
    settings["urban_images"] = None if quick else PILOT_URBAN_IMAGES
    settings["warmup_steps"] = min(settings["warmup_steps"], settings["max_steps"])
    results = _open(path, settings, _meta(settings, command=command, quick=quick))
    _train(
        {"depth2": 2}, settings, path=path, work=work, results=results, command=command, quick=quick
    )
    start = time.perf_counter()
    timed = ablation.measure(
        [ablation._BY_NAME[r] for r in rows], settings, steps=1 if quick else 10
    )
    spent = _pilot_spent(results) + time.perf_counter() - start
    macs = {r: _row_record(ablation._BY_NAME[r])["macs_per_pixel"] for r in rows}
    plan, inputs = pilot_plan(
        results,
        timed,
        macs=macs,
        budget_s=args.hours * 3600 - spent,
        step_options=tuple(range(study_steps, 4 * study_steps + 1, max(1, study_steps // 5))),
        target=args.target,
        seed_sd=args.seed_sd,
        urban_images=study_urban,
    )
    inputs["pilot_s"] = round(spent)
    study_work = work.parent / ("ablation_long_quick" if quick else "ablation_long")
    study = _study_command(plan, quick=quick, work=_shown(study_work))
    results["plan"] = {
        **dataclasses.asdict(plan),
        "worst": plan.worst,
        "inputs": inputs,
        "command": study,
    }
    ablation._save(path, results)
    _print_plan(plan, inputs, study)
    return results


def _shown(path: Path) -> str:
    """``path`` as a command shows it: relative to the repository when beside it (``../runs``)."""
    path = path.resolve()
    if path.is_relative_to(ablation.ROOT.parent):
        return os.path.relpath(path, ablation.ROOT)
    return str(path)
