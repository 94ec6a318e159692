"""Plot ``benchmarks/results/model_bench.json`` as the figure of the docs' Performance page.

Left: achieved GFLOP/s of each model per LR size (forward and training step). Right: the model/peer
time ratio and per-MAC ratio per size. Needs matplotlib (``pip install treeattn[bench]``).

Usage::

    python benchmarks/plot_model_bench.py [--json PATH] [--out docs/img/model_bench.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = {"fwd": "forward", "train": "training step"}


def _line(axis, sizes: list[str], values: list[float], style: str, marker: str, label: str):
    if sizes:
        axis.plot([int(s) for s in sizes], values, style, marker=marker, label=label)


def plot(data: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, results = data["meta"], data["results"]
    sizes = list(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for mode, label in MODES.items():
        style = "-" if mode == "fwd" else "--"
        ran = [s for s in sizes if mode in results[s]]
        for name in (meta["model"], meta["peer"]):
            values = [results[s][mode][name]["gflops"] for s in ran]
            _line(left, ran, values, style, "o", f"{name}, {label}")
        values = [results[s]["ratios"][f"{mode}_time"] for s in ran]
        _line(right, ran, values, style, "o", f"time, {label}")
        values = [results[s]["ratios"][f"{mode}_per_mac"] for s in ran]
        _line(right, ran, values, style, "s", f"per MAC, {label}")
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks([int(s) for s in sizes], [f"{s}²" for s in sizes])
        axis.set_xlabel("LR input size")
        axis.grid(alpha=0.3)
    left.set_ylabel("GFLOP/s (2 FLOPs per MAC)")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    right.axhline(1.0, color="grey", linewidth=0.8)
    right.set_ylabel(f"{meta['model']} / {meta['peer']}")
    right.legend(fontsize=8)
    cpu = meta.get("cpu") or meta["machine"]
    fig.suptitle(
        f"{cpu}, {meta['threads']} thread(s), torch {meta['torch']}, "
        f"load {meta['load_before']:.1f}",
        fontsize=9,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/model_bench.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img/model_bench.png")
    args = parser.parse_args()
    plot(json.loads(args.json.read_text()), args.out)


if __name__ == "__main__":
    main()
