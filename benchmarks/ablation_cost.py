"""Equal cost in the long depth study: PSNR against training wall time and against MACs.

Not part of the package: ``benchmarks/ablation.py`` and ``notebooks/depth_ablation.ipynb`` import
it by file name. Rows differ in seconds per step (Swin against the tree, depth 3 against 1), so
equal steps are not equal cost. Each run of ``ablation_long.json`` records its validation curve
with the training seconds (validations and checkpoints left out) reached at every point; here a
row's curve is the mean over its seeds, each interpolated linearly in time (never extrapolated),
and rows are compared at the longest time every row reached.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["cost_table", "equal_time", "interpolate", "row_curve", "time_curve"]

Curve = list[tuple[float, float]]


def time_curve(run: Mapping[str, Any], key: str) -> Curve:
    """``(training seconds, value)`` of a run's validation curve for ``key`` (e.g. ``x/psnr``)."""
    return [(point["train_time_s"], point[key]) for point in run["val_curve"] if key in point]


def interpolate(curve: Sequence[tuple[float, float]], at: float) -> float | None:
    """The curve's value at time ``at`` (linear), ``None`` outside its first and last points."""
    if not curve or not curve[0][0] <= at <= curve[-1][0]:
        return None
    for (t0, v0), (t1, v1) in itertools.pairwise(curve):
        if t0 <= at <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (at - t0) / (t1 - t0)
    return curve[-1][1]  # one point, at == its time


def row_curve(runs: Sequence[Mapping[str, Any]], key: str) -> Curve:
    """A row's curve: the mean over its seeds at every time all seeds cover.

    The times are the union of the seeds' validation times within the span every seed reached.
    """
    curves = [time_curve(run, key) for run in runs]
    curves = [curve for curve in curves if curve]
    if not curves:
        return []
    start = max(curve[0][0] for curve in curves)
    end = min(curve[-1][0] for curve in curves)
    times = sorted({t for curve in curves for t, _ in curve if start <= t <= end})
    return [(t, statistics.fmean(interpolate(curve, t) for curve in curves)) for t in times]


def equal_time(
    rows: Mapping[str, Mapping[str, Any]], key: str, *, at: float | None = None
) -> dict[str, Any]:
    """Which row is ahead at equal training wall time on one validation key.

    Args:
        rows: ``results["rows"]`` of ``ablation_long.json``.
        key: Validation curve key, e.g. ``"gray_test/psnr"``.
        at: Training seconds to compare at (default: the longest time every row reached).

    Returns:
        ``time_s``, ``values`` (``{row: value}``, rows whose curve does not reach ``time_s`` left
        out), ``winner`` and ``margin`` (winner minus the runner-up; ``None`` with one row).

    Raises:
        ValueError: No row has a curve for ``key``, or ``at`` lies outside every row's curve.
    """
    curves = {name: row_curve(list(row["seeds"].values()), key) for name, row in rows.items()}
    curves = {name: curve for name, curve in curves.items() if curve}
    if not curves:
        raise ValueError(f"no row has a validation curve for {key!r}")
    if at is None:
        at = min(curve[-1][0] for curve in curves.values())
    values = {name: interpolate(curve, at) for name, curve in curves.items()}
    values = {name: value for name, value in values.items() if value is not None}
    if not values:
        raise ValueError(f"no row's curve reaches {at:.0f} s of training; give another time")
    ranked = sorted(values, key=values.get, reverse=True)
    margin = values[ranked[0]] - values[ranked[1]] if len(ranked) > 1 else None
    return {"time_s": at, "values": values, "winner": ranked[0], "margin": margin}


def cost_table(
    rows: Mapping[str, Mapping[str, Any]], test: str, metric: str = "psnr"
) -> list[dict[str, Any]]:
    """Each row's seed-mean final score on ``test`` against its cost, cheapest MACs first.

    Returns:
        Per row: ``row``, ``macs_per_pixel``, ``s_per_step`` and ``train_s`` (seed means),
        ``score``, and ``pareto_macs`` / ``pareto_time``: no other row scores higher for at most
        the same MACs per pixel / training time.
    """
    table = []
    for name, row in rows.items():
        runs = list(row["seeds"].values())
        table.append(
            {
                "row": name,
                "macs_per_pixel": row["macs_per_pixel"],
                "s_per_step": statistics.fmean(run["s_per_step"] for run in runs),
                "train_s": statistics.fmean(run["train_s"] for run in runs),
                "score": statistics.fmean(run["test"][test][metric] for run in runs),
            }
        )
    for entry in table:
        for cost, flag in (("macs_per_pixel", "pareto_macs"), ("train_s", "pareto_time")):
            entry[flag] = not any(
                other["score"] > entry["score"] and other[cost] <= entry[cost]
                for other in table
                if other is not entry
            )
    return sorted(table, key=lambda entry: entry["macs_per_pixel"])
