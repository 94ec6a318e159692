"""Package a finished denoising run as a shipped pretrained model.

Saves the run's final ``model/`` (with its training record) into ``treeattn/pretrained/NAME/``,
writes its ``benchmark.json`` from the rows of ``denoise_bench.py``'s results that scored this model
(found by its checksum) and of the peers on the same images (BM3D, DnCNN-S), draws the
training curves (loss, learning rate, validation PSNR against steps) from the run's ``log.jsonl``
and writes ``benchmarks/results/NAME_training.json``: the exact command, the resumed pieces with
their seconds of work and of pause, the training hours and the validations::

    python benchmarks/denoise_bench.py --model ../runs/dn_gray_mid --no-shipped

    python benchmarks/ship_pretrained.py --run ../runs/dn_gray_mid --name hiir_dn_gray_mid \\
        --sigma-range 0 50 --summary "blind gray Gaussian denoiser, σ 0-50, Train400, CPU" \\
        --command "accelerate launch recipes/denoise.py --preset cpu_gray_mid ..."

The model card (``README.md`` in the same folder) is written by hand from these files. When the
benchmark scores a shipped model on more sets or peers later, ``--refresh`` rewrites its
``benchmark.json`` rows alone (no run folder needed)::

    python benchmarks/ship_pretrained.py --name hiir_dn_gray_cpu --refresh
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from denoise_bench import TREEATTN_MODES, model_checksum, read_rows, row_group, save_rows

from treeattn.engine.curves import read_log as engine_read_log
from treeattn.engine.rundir import CONFIG_FILE
from treeattn.models import TrainingRecord, from_pretrained, save_pretrained

ROOT = Path(__file__).resolve().parents[1]


#: An interval between two log records longer than this is a pause (the process was stopped or
#: suspended), not training: records come every few seconds and a validation pass takes minutes.
PAUSE_S = 200.0


def read_log(run: Path, *, pause_s: float = PAUSE_S) -> list[dict]:
    """The run's log records as one history, each with ``piece`` and ``wall_s``.

    A resumed piece restarts ``time_s`` at 0 (its logger starts anew), so pieces are told apart by
    ``time_s`` going down; ``piece`` is 0 for the first and +1 at each resume. A piece resumes from
    its latest checkpoint and so repeats the steps its predecessor ran after that checkpoint: the
    predecessor's records of those steps are dropped (the later piece's stand in the history).

    ``wall_s`` is the seconds of work up to the record, summed over the pieces: training and
    validation, the repeated steps included (they were computed twice), pauses left out — an
    interval longer than ``pause_s`` counts as the median interval of the log.
    """
    records, wall, piece = [], 0.0, -1
    for record, worked, _, new_piece in _timed(engine_read_log(run), pause_s):
        if new_piece:
            piece += 1
            records = [r for r in records if r["step"] < record["step"]]
        wall += worked
        records.append({**record, "piece": piece, "wall_s": wall})
    return records


def _timed(raw: list[dict], pause_s: float) -> list[tuple[dict, float, float, bool]]:
    """``(record, seconds worked, seconds paused, starts a piece)`` for every raw log record:
    the interval since the previous record of the piece (since its start for the first), a pause
    (longer than ``pause_s``) counted as the median of the other intervals."""
    intervals, last = [], 0.0
    for record in raw:
        starts = record["time_s"] < last or not intervals
        intervals.append((record["time_s"] - (0.0 if starts else last), starts))
        last = record["time_s"]
    worked = sorted(d for d, _ in intervals if d <= pause_s)
    typical = worked[len(worked) // 2] if worked else 0.0
    return [
        (record, d, 0.0, starts) if d <= pause_s else (record, typical, d - typical, starts)
        for record, (d, starts) in zip(raw, intervals, strict=True)
    ]


def training_pieces(run: Path, *, pause_s: float = PAUSE_S) -> list[dict]:
    """The run's resumed pieces: first and last step logged, seconds worked and paused."""
    pieces = []
    for record, worked, paused, starts in _timed(engine_read_log(run), pause_s):
        if starts:
            pieces.append({"from_step": record["step"], "work_s": 0.0, "paused_s": 0.0})
        piece = pieces[-1]
        piece["to_step"] = record["step"]
        piece["work_s"] = round(piece["work_s"] + worked, 2)
        piece["paused_s"] = round(piece["paused_s"] + paused, 2)
    return pieces


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what exists so far)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def draw_curves(records: list[dict], path: Path, *, title: str, val_label: str) -> None:
    """Training loss and validation PSNR against step, with the wall time in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    psnr_keys = sorted({k for r in val for k in r if k.endswith("/psnr")})
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    steps = [r["step"] for r in train]
    losses = [r["loss"] for r in train]
    ax_loss.plot(steps, losses, lw=0.4, color="tab:blue", alpha=0.35, label="L1 loss")
    ax_loss.plot(steps, _smooth(losses, 50), lw=1.2, color="tab:blue", label="moving average")
    ax_loss.set(xlabel="optimizer step", ylabel="training L1 loss (0-1 scale)", yscale="log")
    ax_lr = ax_loss.twinx()
    ax_lr.plot(steps, [r["lr"] for r in train], color="tab:gray", ls="--", label="learning rate")
    ax_lr.set_ylabel("learning rate")
    handles = ax_loss.get_legend_handles_labels()
    extra = ax_lr.get_legend_handles_labels()
    ax_loss.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper right")
    ax_loss.set_title("training loss and learning rate")
    for key in psnr_keys:
        points = [(r["step"], r[key]) for r in val if key in r]
        ax_psnr.plot(*zip(*points, strict=True), marker="o", ms=3, label=key.split("/")[0])
    ax_psnr.set(xlabel="optimizer step", ylabel="validation PSNR (dB)")
    ax_psnr.set_title(val_label)
    ax_psnr.grid(alpha=0.3)
    if psnr_keys:
        ax_psnr.legend()
    hours = train[-1]["wall_s"] / 3600 if train else 0
    pieces = records[-1]["piece"] + 1 if records else 1
    fig.suptitle(
        f"{title}: {steps[-1] if steps else 0} steps, {hours:.2f} h of training (pauses left out)"
        + (f" in {pieces} resumed pieces" if pieces > 1 else "")
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _run_settings(run: Path) -> dict:
    """The run's resolved settings (``config.yaml``), or nothing for runs that predate it."""
    path = run / CONFIG_FILE
    if not path.is_file():
        return {}
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def _benchmark_rows(rows: list[dict], checksum: str) -> list[dict]:
    """The treeattn rows of the model of ``checksum``, with the peers' rows on the same images."""
    ours = [r for r in rows if r["method"] in TREEATTN_MODES.values() and r["checksum"] == checksum]
    groups = {row_group(r) for r in ours}
    peers = [r for r in rows if r["method"] in ("bm3d", "dncnn_s25") and row_group(r) in groups]
    return [r for r in rows if r in peers or r in ours]


def _named(rows: list[dict], checksum: str, name: str) -> list[dict]:
    """``rows`` with the treeattn rows of the model of ``checksum`` labelled ``name``."""
    return [
        {**r, "model": name}
        if r["method"] in TREEATTN_MODES.values() and r["checksum"] == checksum
        else r
        for r in rows
    ]


def _name_results(bench: Path, checksum: str, name: str) -> None:
    """Label the rows of ``checksum`` in the results file (and its tables) with the shipped
    name, so that they read as the shipped model's from now on."""
    save_rows(bench, _named(read_rows(bench), checksum, name))


def refresh(name: str, bench: Path) -> int:
    """Rewrite the rows of the shipped ``name``'s ``benchmark.json`` from the results file
    ``bench`` (the rows of its weights and the peers' on the same images); the rest stays."""
    target = ROOT / "treeattn" / "pretrained" / name
    path = target / "benchmark.json"
    if not path.is_file():
        raise SystemExit(
            f"{target} is no shipped model with a benchmark.json (treeattn list --pretrained)"
        )
    checksum = model_checksum(target)
    rows = _named(_benchmark_rows(read_rows(bench), checksum), checksum, name)
    if not rows:
        raise SystemExit(f"{bench} holds no row of {name}'s weights; run denoise_bench.py first")
    _name_results(bench, checksum, name)
    benchmark = json.loads(path.read_text())
    benchmark |= {"benchmark_commands": sorted({r["command"] for r in rows}), "rows": rows}
    path.write_text(json.dumps(benchmark, indent=2) + "\n")
    print(f"{path}: {len(rows)} rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Copy weights, write benchmark.json and curves.png; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="the recipe's output folder")
    parser.add_argument("--name", required=True, help="shipped model name (folder name)")
    parser.add_argument("--summary", help="one line: what the model is")
    parser.add_argument("--sigma-range", nargs=2, type=float, metavar=("LO", "HI"))
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="only rewrite the shipped NAME's benchmark.json rows from --bench (new rows of its "
        "weights and of the peers on the same images); needs no run",
    )
    parser.add_argument(
        "--data",
        default="Train400: 400 gray 180×180 BSD crops (DnCNN's public repository)",
        help="the training data, in words (recorded with the weights)",
    )
    parser.add_argument(
        "--bench",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "denoise_bench.json",
        help="denoise_bench.py's results (or an older denoise_vs_bm3d.py results file)",
    )
    parser.add_argument("--command", help="the exact training command (recorded with the run)")
    parser.add_argument(
        "--pause-s",
        type=float,
        default=PAUSE_S,
        help="an interval between log records longer than this many seconds is a pause, left out "
        f"of the training time (default {PAUSE_S:g})",
    )
    args = parser.parse_args(argv)
    if args.refresh:
        return refresh(args.name, args.bench)
    needed = ("--run", "--summary", "--sigma-range", "--command")
    missing = [flag for flag in needed if getattr(args, flag[2:].replace("-", "_")) is None]
    if missing:
        parser.error(f"shipping a run needs {', '.join(missing)} (or --refresh NAME alone)")
    model_dir = args.run / "model"
    if not (model_dir / "model.safetensors").is_file():
        parser.error(f"{model_dir} holds no final model; finish (or resume) the run first")
    target = ROOT / "treeattn" / "pretrained" / args.name
    records = read_log(args.run, pause_s=args.pause_s)
    train = [r for r in records if r["kind"] == "train"]
    model = from_pretrained(model_dir)
    if model.provenance is None:  # runs of treeattn before training records
        model.provenance = TrainingRecord(
            task="denoise",
            in_chans=model.meta.in_chans,
            out_chans=model.meta.out_chans,
            degradation="awgn",
            level_name="sigma",
            level=tuple(args.sigma_range),
            data=args.data,
            steps=train[-1]["step"],
        )
    else:  # the recipe records its folder; a shipped model says what the data is
        model.provenance = dataclasses.replace(model.provenance, data=args.data)
    if list(model.provenance.level) != args.sigma_range:
        parser.error(
            f"--sigma-range {args.sigma_range} differs from the run's training levels "
            f"{list(model.provenance.level)}"
        )
    checksum = model_checksum(model_dir)
    rows = _benchmark_rows(read_rows(args.bench), checksum)
    if not rows:
        parser.error(
            f"{args.bench} holds no row of {model_dir}'s model; run "
            f"`python benchmarks/denoise_bench.py --model {args.run} --no-shipped` first"
        )
    save_pretrained(model, target)
    rows = _named(rows, checksum, args.name)
    _name_results(args.bench, checksum, args.name)
    benchmark = {
        "summary": args.summary,
        "sigma_range": [int(v) if v.is_integer() else v for v in args.sigma_range],
        "steps": train[-1]["step"],
        "training_hours": round(train[-1]["wall_s"] / 3600, 2),
        "benchmark_commands": sorted({row["command"] for row in rows}),
        "rows": rows,
    }
    (target / "benchmark.json").write_text(json.dumps(benchmark, indent=2) + "\n")
    levels = _run_settings(args.run).get("test_level") or []
    val_label = "validation" + (f" at σ = {', '.join(f'{v:g}' for v in levels)}" if levels else "")
    draw_curves(records, target / "curves.png", title=args.name, val_label=val_label)
    training = {
        "what": f"the training run of the shipped {args.name}: its resumed pieces and validations",
        "command": args.command,
        "steps": train[-1]["step"],
        "training_hours": benchmark["training_hours"],
        "hours_counted": f"training and validation, repeated steps included, pauses (intervals "
        f"between log records over {args.pause_s:g} s) left out",
        "pieces": training_pieces(args.run, pause_s=args.pause_s),
        "validation_level": levels,
        "validation": [r for r in records if r["kind"] == "val"],
    }
    training_path = ROOT / "benchmarks" / "results" / f"{args.name}_training.json"
    training_path.parent.mkdir(parents=True, exist_ok=True)
    training_path.write_text(json.dumps(training, indent=2) + "\n")
    print(f"shipped {args.name} in {target}; its training: {training_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
