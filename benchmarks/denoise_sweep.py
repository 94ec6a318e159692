"""Short, equal-wall-time training sweeps for the long-range gray denoiser (issue 17).

Every arm trains a blind gray denoiser (σ 0-50) on Train400 for about the same wall time on this
CPU (its steps are set from the arm's measured seconds per step), is validated at σ 25 on Set12
and on the Urban100 validation crops (``benchmarks/urban_split.py``: centred 256² crops of
images 091-100, never reported on) and records its validation curve. Arms differ in one thing each
(model width/depth, tree, crop schedule, learning rate, warm start), so the JSON says what won::

    python benchmarks/urban_split.py --out ../runs/data/Urban100_val
    python benchmarks/denoise_sweep.py --arms tiny w32 --runs ../runs/sweep17
    python benchmarks/denoise_sweep.py --summary            # the table of what is recorded

Runs are resumable arm by arm: a finished arm (its ``model/`` exists) is only re-read.
Results go to ``benchmarks/results/denoise_longrange_sweep.json`` (with each arm's command).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "denoise_longrange_sweep.json"
URBAN_VAL = ROOT.parent / "runs" / "data" / "Urban100_val"

# Shared by every arm: blind σ 0-50, validation at σ 25, AdamW cosine with a short warm-up.
COMMON = (
    "--channels 1 --sigma 0 50 --test-sigma 25 --warmup-steps 100 --min-lr-ratio 0.01 "
    "--max-minutes 0 --save-images 0 --threads 2 --ema-decay 0 --no-with-tracking"
)
_TINY = "--model hiir_unet_tiny_dn_gray"
_W24 = f"{_TINY} --model-overrides dims=[24,48,96,192]"
_W32 = f"{_TINY} --model-overrides dims=[32,64,128,256]"
_TREE64 = f"{_TINY} --model-overrides patch_sizes=[[8,64],[8,64],[8,32],[8,32]]"
_P64, _P128 = "--patch-size 64 --batch-size 8", "--patch-size 128 --batch-size 2"

# Arm → (flags, steps, estimated quiet training seconds). Steps give each arm ≈ 8 minutes of
# training at 2 threads on a quiet machine, from seconds per step measured here (tiny 0.33 at
# 64²×8, 0.44 at 128²×2; tiny with the 64 px tree 0.58 at 64²×8, 0.44 at 128²×2; w24 0.56;
# w32 0.87). The sweep itself ran beside other work, so its recorded wall times are longer.
ARMS: dict[str, tuple[str, int, float]] = {
    "tiny": (f"{_TINY} {_P64} --lr 2e-3", 1450, 1450 * 0.33),
    "tiny_lr1e-3": (f"{_TINY} {_P64} --lr 1e-3", 1450, 1450 * 0.33),
    "w24": (f"{_W24} {_P64} --lr 1e-3", 850, 850 * 0.56),
    "w32": (f"{_W32} {_P64} --lr 1e-3", 550, 550 * 0.87),
    "tiny_tree64_p128": (f"{_TREE64} {_P128} --lr 2e-3", 1100, 1100 * 0.44),
    "tiny_p128": (f"{_TINY} {_P128} --lr 2e-3", 1100, 1100 * 0.44),
    # Progressive crops: 64²×8, then 128²×2 (the same pixels per step) for the last part.
    "tiny_prog": (
        f"{_TINY} {_P64} --patch-schedule 1000:128:2 --lr 2e-3",
        1350,
        1000 * 0.33 + 350 * 0.44,
    ),
    # Warm start (issue 22): the shipped 20k-step model with the 64 px tree, against the same
    # run from scratch (tiny_tree64_p128) at equal steps.
    "warm_tree64_p128": (
        f"{_TREE64} {_P128} --init-from hiir_dn_gray_cpu --lr 2e-4",
        1100,
        1100 * 0.44,
    ),
    "tiny_tree64_prog": (
        f"{_TREE64} {_P64} --patch-schedule 400:128:2 --lr 2e-3",
        1000,
        400 * 0.58 + 600 * 0.44,
    ),
}


# What the arms showed, and the design `--preset cpu_gray_mid` took from them (issue 17).
DECISION = (
    "Every arm is far from converged (the shipped 20k-step tiny model validates 27.28 dB on the "
    "Urban100 crops, these 23.7-25.8), so the sweep ranks how fast each design learns, one factor "
    "at a time. Crops: 64² then 128² for the last quarter (tiny_prog) beats 64² throughout "
    "(tiny) by +0.46 dB Set12 / +0.60 dB Urban100 crops at equal time - the largest effect - and "
    "128² from the start (batch 2) is worst. Tree: at 128² crops and equal steps, 64 px level-1 "
    "regions (tiny_tree64_p128) beat the 32 px tree (tiny_p128) by +0.32 / +0.65 dB, the only "
    "factor that favours the Urban100 crops more than Set12; at 64² crops the wider tree pads "
    "and costs 1.3-1.75x per step, so at equal time with an early switch (tiny_tree64_prog) it "
    "is behind tiny_prog. Width: 24 channels (w24) ties the tiny model at equal time with a "
    "steeper curve per step; 32 (w32) is behind at 8 minutes and ~2x slower at inference. "
    "Chosen for the ~6 h run: 24 channels (capacity for the 45x longer budget), the 64 px tree "
    "(the long-range gain, free at 128² crops, where the run spends 5/6 of its steps), 64² crops "
    "for the first 6000 steps then 128² (progressive), peak LR 1e-3 with a 1000-step warm-up "
    "(no spikes). Not separately measured: that combination itself, and the LR change."
)


def command(arm: str, runs: Path) -> list[str]:
    """The ``accelerate launch`` command of ``arm`` writing to ``runs/arm``."""
    flags, steps, _ = ARMS[arm]
    tests = f"{DATA / 'test' / 'Set12'} {URBAN_VAL}"
    return shlex.split(
        f"accelerate launch {ROOT / 'recipes' / 'denoise.py'} {COMMON} {flags} "
        f"--train-dir {DATA / 'train' / 'Train400'} --test-dir {tests} --max-steps {steps} "
        f"--val-every {steps // 4} --checkpointing-steps {steps // 4} --output-dir {runs / arm}"
    )


def read_curve(run: Path) -> list[dict]:
    """The run's validation rows (``val.csv``) as dicts of floats."""
    with open(run / "val.csv", newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def train_seconds(run: Path) -> float:
    """Training wall time of the run: the last ``train`` record's clock."""
    last = 0.0
    for line in (run / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "train":
            last = max(last, float(record["time_s"]))
    return last


def record(arm: str, runs: Path) -> dict:
    """The arm's entry: settings, command, curve and final validation PSNR/SSIM."""
    run = runs / arm
    curve = read_curve(run)
    final = curve[-1]
    cmd = [
        part.replace(f"{ROOT}/", "").replace(str(ROOT.parent), "..") for part in command(arm, runs)
    ]
    return {
        "arm": arm,
        "steps": ARMS[arm][1],
        "quiet_train_seconds_estimate": round(ARMS[arm][2]),
        "command": shlex.join(cmd),
        "train_seconds_recorded": round(train_seconds(run), 1),
        "set12_psnr": round(final["Set12/psnr"], 3),
        "urban_val_psnr": round(final["Urban100_val/psnr"], 3),
        "set12_ssim": round(final["Set12/ssim"], 4),
        "urban_val_ssim": round(final["Urban100_val/ssim"], 4),
        "curve": [
            {
                "step": int(r["step"]),
                "time_s": r["time_s"],
                "set12": round(r["Set12/psnr"], 3),
                "urban_val": round(r["Urban100_val/psnr"], 3),
            }
            for r in curve
        ],
    }


def references() -> dict:
    """Where the arms stand: DnCNN-S (σ 25) and the shipped ``hiir_dn_gray_cpu`` (20k steps) on
    the same validation images and noise, one pass."""
    import torch
    from peers import DNCNN_S25, load_dncnn

    from treeattn.data.benchmark import evaluate_folder
    from treeattn.data.degradations import build_degradation
    from treeattn.inference import restore_image
    from treeattn.models import create_model

    shipped = create_model("hiir_dn_gray_cpu", pretrained=True).eval()
    dncnn = load_dncnn(DNCNN_S25).eval()
    methods = {"dncnn_s25": dncnn, "hiir_dn_gray_cpu": lambda x: restore_image(shipped, x)}
    rows = {}
    for name, restore in methods.items():
        rows[name] = {}
        for label, folder in (("set12", DATA / "test" / "Set12"), ("urban_val", URBAN_VAL)):
            with torch.no_grad():
                table = evaluate_folder(
                    restore,
                    folder,
                    degradation=build_degradation("awgn", sigma=25.0),
                    protocol="denoise",
                    seed=0,
                    channels=1,
                )
            rows[name][f"{label}_psnr"] = round(table.mean["psnr"], 3)
    return rows


def load(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {
        "purpose": "choose the long-range gray denoiser's design (issue 17) by equal wall time",
        "machine": f"{platform.processor() or platform.machine()}, 2 threads",
        "validation": "sigma 25: Set12 and Urban100 centred 256x256 crops of img_091-100",
        "arms": {},
    }


def save(path: Path, results: dict) -> None:
    """Write the results with the current decision text."""
    path.write_text(json.dumps({**results, "decision": DECISION}, indent=2) + "\n")


def summary(results: dict) -> str:
    """The recorded arms (and references, when scored) as a Markdown table."""
    lines = [
        "| arm | steps | quiet train s (est.) | Set12 | Urban100 val |",
        "|---|---|---|---|---|",
    ]
    for row in results["arms"].values():
        lines.append(
            f"| {row['arm']} | {row['steps']} | {row['quiet_train_seconds_estimate']} | "
            f"{row['set12_psnr']:.2f} | {row['urban_val_psnr']:.2f} |"
        )
    for name, row in results.get("references", {}).items():
        lines.append(
            f"| *{name}* (reference) | — | — | {row['set12_psnr']:.2f} | "
            f"{row['urban_val_psnr']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="*", default=[], choices=sorted(ARMS))
    parser.add_argument("--runs", type=Path, default=ROOT.parent / "runs" / "sweep17")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--summary", action="store_true", help="print the recorded table")
    parser.add_argument(
        "--references", action="store_true", help="also score DnCNN-S and the shipped model"
    )
    args = parser.parse_args(argv)
    if args.arms and not URBAN_VAL.is_dir():
        parser.error(f"{URBAN_VAL} is missing: run benchmarks/urban_split.py --out {URBAN_VAL}")
    results = load(args.out)
    if args.summary and not args.arms:  # re-read the recorded runs (fields added since)
        for arm in [a for a in results["arms"] if (args.runs / a / "model").is_dir()]:
            results["arms"][arm] = record(arm, args.runs)
        save(args.out, results)
    for arm in args.arms:
        run = args.runs / arm
        if not (run / "model").is_dir():
            resume = ["--resume-from-checkpoint", "latest"] if run.exists() else []
            subprocess.run([*command(arm, args.runs), *resume], check=True)
        results["arms"][arm] = record(arm, args.runs)
        save(args.out, results)
        print(summary(results), flush=True)
    if args.references:
        results["references"] = references()
        save(args.out, results)
    if args.summary:
        print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
