"""The long depth study's summary as markdown tables, computed from ``ablation_long.json``.

Not part of the package. ``docs/ablation.md`` pastes its output (so no number there is typed by
hand) and ``notebooks/depth_ablation.ipynb`` displays it::

    python benchmarks/ablation_summary.py       # benchmarks/results/ablation_long.json
    python benchmarks/ablation_summary.py --results other.json

Two tables: every row's seed-mean scores and costs, and every comparison's paired difference with
its 95 % interval and verdict per test set (``ablation_stats.compare_rows``) beside the row ahead
at equal training wall time on each validation curve (``ablation_cost.equal_time``). A study still
running is summarised as far as it has come: comparisons with a row not yet trained are left out,
and the tables say how many runs they rest on.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ablation_cost
import ablation_stats

__all__ = ["comparison_table", "row_table", "summary"]

RESULTS = Path(__file__).resolve().parent / "results" / "ablation_long.json"


def _tests(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Test sets in the results, in the order the runs recorded them."""
    seen: dict[str, None] = {}
    for row in rows.values():
        for run in row["seeds"].values():
            seen.update(dict.fromkeys(run["test"]))
    return list(seen)


def _curve_keys(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows.values():
        for run in row["seeds"].values():
            for point in run["val_curve"]:
                keys.update(dict.fromkeys(k for k in point if k.endswith("/psnr")))
    return list(keys)


def row_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Per row (each with a finished run): seeds, MACs/px, s/step, per test set PSNR ± sd / SSIM."""
    tests = _tests(rows)
    columns = ["row", "seeds", "MACs/px", "s/step", *(f"{t} PSNR / SSIM" for t in tests)]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for name, row in rows.items():
        runs = list(row["seeds"].values())
        cells = [
            f"`{name}`",
            str(len(runs)),
            f"{row['macs_per_pixel']:,}",
            f"{statistics.fmean(r['s_per_step'] for r in runs):.3f}",
        ]
        for test in tests:
            psnr = [r["test"][test]["psnr"] for r in runs]
            ssim = statistics.fmean(r["test"][test]["ssim"] for r in runs)
            sd = f" ± {statistics.stdev(psnr):.2f}" if len(psnr) > 1 else ""
            cells.append(f"{statistics.fmean(psnr):.2f}{sd} / {ssim:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _equal_time(rows: Mapping[str, Mapping[str, Any]], a: str, b: str, key: str) -> str:
    pair = ablation_cost.equal_time({a: rows[a], b: rows[b]}, key)
    if pair["margin"] is None:
        return f"only `{pair['winner']}` reaches {pair['time_s']:.0f} s"
    return f"`{pair['winner']}` +{pair['margin']:.3f} dB at {pair['time_s']:.0f} s"


def comparison_table(
    rows: Mapping[str, Mapping[str, Any]], comparisons: list[list[Any]] | list[tuple[Any, ...]]
) -> str:
    """Per comparison: the paired difference, 95 % interval and verdict on every test set, and
    the row ahead at equal training time on every validation curve."""
    tests, keys = _tests(rows), _curve_keys(rows)
    pairs = [(c[0], c[1], c[2]) for c in comparisons if c[0] in rows and c[1] in rows]
    records = {
        (r["a"], r["b"], r["test"]): r
        for r in ablation_stats.compare_rows(rows, [(a, b) for a, b, _ in pairs])
    }
    header = ["comparison", *tests, *(f"equal time, {k.removesuffix('/psnr')}" for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for a, b, what in pairs:
        cells = [f"`{a} − {b}` ({what})"]
        for test in tests:
            r = records[a, b, test]
            cells.append(
                f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] "
                f"({r['seeds_a']}/{r['seeds_b']} seeds): **{r['verdict']}**"
            )
        cells += [_equal_time(rows, a, b, key) for key in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(results: Mapping[str, Any]) -> str:
    """Both tables with a line on what they rest on (runs, steps, seed spread); rows without a
    finished run are left out."""
    meta = results["meta"]
    rows = {name: row for name, row in results["rows"].items() if row["seeds"]}
    runs = sum(len(row["seeds"]) for row in rows.values())
    spreads = ablation_stats.seed_spreads(rows)
    spread = ", ".join(
        f"{test} {s.sd:.3f} dB ({s.dof} dof)" for test, s in spreads.items() if s.dof > 0
    )
    head = (
        f"{runs} runs of {meta['settings']['max_steps']} steps; seed sd of a set mean "
        f"(pooled): {spread or 'not measured yet'}. PSNR in dB; differences A − B with the 95 % "
        "bootstrap interval."
    )
    return "\n\n".join([head, row_table(rows), comparison_table(rows, meta["comparisons"])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="ablation_long.json")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        parser.error(f"{args.results} is missing: run the long study first (docs/ablation.md)")
    print(summary(json.loads(args.results.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
