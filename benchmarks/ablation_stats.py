"""Statistics of the long depth study: paired differences, bootstrap intervals, verdicts, power.

Not part of the package: ``benchmarks/ablation.py`` and ``notebooks/depth_ablation.ipynb`` import
it by file name. The method, stated once (``docs/ablation.md`` repeats it):

* **Scores.** A row's score on a test image is its PSNR (or SSIM) averaged over the row's seeds.
* **Paired difference.** Comparing rows A and B on a test set, every image gives one difference
  ``score_A − score_B``; their mean is the reported difference.
* **Interval.** A seeded percentile bootstrap: the images are resampled with replacement (one draw
  serves both rows: the pairing is kept) and the mean difference recomputed, ``resamples`` times.
  Resampling images cannot see how far a retrained model moves, so each resampled mean also gets a
  normal draw ``N(0, s² (1/n_A + 1/n_B))``: ``s`` is the seed standard deviation of one model's
  set-mean score, pooled over the rows trained with several seeds, and ``n_A``, ``n_B`` are the
  rows' seed counts. The interval is the central ``level`` share of the resampled means.
* **Verdict.** ``better`` when the whole interval lies above 0, ``worse`` when below, otherwise
  ``no difference at this power`` (a difference may exist, the study cannot tell it from noise).
* **Power.** Before training, :func:`plan_study` chooses steps and seeds per row so that every
  planned comparison's interval half-width (:func:`half_width`, the normal approximation of the
  interval above) is at most the target: a difference of that size would then lie outside it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "NO_DIFFERENCE",
    "Interval",
    "Plan",
    "SeedSpread",
    "bootstrap_interval",
    "compare_rows",
    "half_width",
    "paired_differences",
    "plan_study",
    "run_scores",
    "seed_average",
    "seed_spread",
    "seed_spreads",
    "verdict",
]

NO_DIFFERENCE = "no difference at this power"


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean paired difference and its bootstrap interval.

    Attributes:
        mean: Mean of the per-image differences.
        low: Lower end of the interval.
        high: Upper end of the interval.
        level: Coverage, e.g. 0.95.
        images: Images paired.
    """

    mean: float
    low: float
    high: float
    level: float
    images: int

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2


@dataclasses.dataclass(frozen=True)
class SeedSpread:
    """How far a model's set-mean score moves with the training seed.

    Attributes:
        sd: Pooled standard deviation over the rows with several seeds (``nan`` without any).
        dof: Degrees of freedom behind it (seeds minus one, summed over those rows).
        largest_range: Largest max − min of one row's seeds (``nan`` without any).
    """

    sd: float
    dof: int
    largest_range: float


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    return statistics.NormalDist().inv_cdf((1 + level) / 2)


def seed_average(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-image scores averaged over seeds.

    Args:
        runs: One ``{image: score}`` per seed, all over the same images.

    Raises:
        ValueError: No runs, or runs over different images.
    """
    if not runs:
        raise ValueError("runs is empty: give the scores of at least one seed")
    names = set(runs[0])
    for run in runs[1:]:
        if set(run) != names:
            raise ValueError(
                f"the seeds were scored on different images ({sorted(names ^ set(run))[:3]}...); "
                "evaluate every seed on the same test set"
            )
    return {name: statistics.fmean(run[name] for run in runs) for name in runs[0]}


def paired_differences(
    a: Sequence[Mapping[str, float]], b: Sequence[Mapping[str, float]]
) -> np.ndarray:
    """Per-image differences ``A − B`` of the seed-averaged scores, in ``A``'s image order.

    Args:
        a: Row A's ``{image: score}`` per seed.
        b: Row B's, over the same images.

    Raises:
        ValueError: The rows were scored on different images.
    """
    mean_a, mean_b = seed_average(a), seed_average(b)
    if set(mean_a) != set(mean_b):
        raise ValueError(
            "the rows were scored on different images; pair them on one test set "
            f"(only in one: {sorted(set(mean_a) ^ set(mean_b))[:3]}...)"
        )
    return np.array([mean_a[name] - mean_b[name] for name in mean_a], dtype=np.float64)


def bootstrap_interval(
    differences: Sequence[float] | np.ndarray,
    *,
    seed_sd: float = 0.0,
    seeds_a: int = 1,
    seeds_b: int = 1,
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Percentile-bootstrap interval of a mean paired difference (see the module docstring).

    Args:
        differences: Per-image differences ``A − B``.
        seed_sd: Seed standard deviation of a model's set-mean score (0 leaves the seed term out).
        seeds_a: Seeds averaged in row A.
        seeds_b: Seeds averaged in row B.
        level: Coverage of the interval.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling generator (the same inputs give the same interval).

    Raises:
        ValueError: Fewer than two differences, a negative or non-finite ``seed_sd``, seed counts
            below 1, or fewer than 100 resamples.
    """
    values = np.asarray(differences, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"differences must be a 1-D list of >= 2 images, got shape {values.shape}")
    if not math.isfinite(seed_sd) or seed_sd < 0:
        raise ValueError(f"seed_sd must be a finite number >= 0, got {seed_sd}")
    if seeds_a < 1 or seeds_b < 1:
        raise ValueError(f"seeds_a and seeds_b must be >= 1, got {seeds_a} and {seeds_b}")
    if resamples < 100:
        raise ValueError(f"resamples must be >= 100 for a stable interval, got {resamples}")
    _z(level)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[draws].mean(axis=1)
    if seed_sd > 0:
        means += rng.normal(0.0, seed_sd * math.sqrt(1 / seeds_a + 1 / seeds_b), size=resamples)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(
        mean=float(values.mean()), low=float(low), high=float(high), level=level, images=values.size
    )


def verdict(interval: Interval) -> str:
    """``better`` (interval above 0), ``worse`` (below 0) or :data:`NO_DIFFERENCE`."""
    if interval.low > 0:
        return "better"
    if interval.high < 0:
        return "worse"
    return NO_DIFFERENCE


def seed_spread(set_means: Mapping[str, Sequence[float]]) -> SeedSpread:
    """Pooled seed standard deviation of set-mean scores.

    Args:
        set_means: ``{row: [set-mean score of each seed]}``; rows with one seed add nothing.
    """
    squares, dof, ranges = 0.0, 0, []
    for values in set_means.values():
        if len(values) < 2:
            continue
        squares += statistics.variance(values) * (len(values) - 1)
        dof += len(values) - 1
        ranges.append(max(values) - min(values))
    if not dof:
        return SeedSpread(sd=math.nan, dof=0, largest_range=math.nan)
    return SeedSpread(sd=math.sqrt(squares / dof), dof=dof, largest_range=max(ranges))


def half_width(
    *,
    seed_sd: float,
    image_sd: float,
    images: int,
    seeds_a: int,
    seeds_b: int,
    level: float = 0.95,
) -> float:
    """Expected half-width of a comparison's interval (normal approximation).

    ``z · sqrt(seed_sd² (1/n_A + 1/n_B) + image_sd² / images)``: the seed term of
    :func:`bootstrap_interval` plus the standard error of a mean over ``images`` paired images.
    ``image_sd`` is the standard deviation of per-image differences; it is not divided by the
    seeds (conservative: only its seed-to-seed part would shrink).
    """
    if images < 1 or seeds_a < 1 or seeds_b < 1:
        raise ValueError(f"images and seeds must be >= 1, got {images}, {seeds_a}, {seeds_b}")
    variance = seed_sd**2 * (1 / seeds_a + 1 / seeds_b) + image_sd**2 / images
    return _z(level) * math.sqrt(variance)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Steps and seeds of the long study, with its cost and power.

    Attributes:
        steps: Training steps of every run.
        seeds: Seeds per row.
        seconds: Estimated CPU wall time of all runs (training, validation, evaluation).
        half_widths: ``{"A-B": worst interval half-width over the test sets}``.
        by_set: ``{"A-B": {test set: interval half-width}}``.
        target: The half-width aimed at.
        meets_target: Whether every comparison's half-width is at most ``target``.
    """

    steps: int
    seeds: dict[str, int]
    seconds: float
    half_widths: dict[str, float]
    by_set: dict[str, dict[str, float]]
    target: float
    meets_target: bool

    @property
    def worst(self) -> float:
        """The largest half-width of the plan's comparisons."""
        return max(self.half_widths.values())


def plan_study(
    *,
    seconds_per_step: Mapping[str, float],
    overhead_s: Mapping[str, float],
    noise: Mapping[str, Mapping[str, float]],
    comparisons: Sequence[tuple[str, str]],
    min_seeds: Mapping[str, int],
    step_options: Sequence[int],
    budget_s: float,
    max_seeds: int = 6,
    target: float = 0.1,
    level: float = 0.95,
) -> Plan:
    """Choose steps and seeds per row for the study's power within a CPU budget.

    Every combination of a step count and seed counts (``min_seeds[row]`` … ``max_seeds``) is
    costed as ``Σ_rows seeds · (steps · seconds_per_step + overhead_s)`` and each comparison's
    half-width is taken as the worst over the test sets (:func:`half_width`). Within the budget,
    the plan meeting the target with the most steps (then the least time) wins; when none meets
    it, the plan with the smallest worst half-width (then the most steps, the least time).
    The seed spread is taken as the same at every step count (measured in a shorter pilot, it is
    if anything too large: seeds drift apart early and converge later).

    Args:
        seconds_per_step: Training seconds per step of each row.
        overhead_s: Seconds per run outside the training steps (validation, evaluation).
        noise: ``{test set: {"seed_sd": ..., "image_sd": ..., "images": ...}}``.
        comparisons: ``(A, B)`` row pairs the study must resolve.
        min_seeds: Least seeds of each row (every row of the study is a key).
        step_options: Step counts to consider.
        budget_s: Seconds available.
        max_seeds: Most seeds per row.
        target: Interval half-width to reach (dB).
        level: Interval coverage.

    Raises:
        ValueError: A comparison names a row without costs, no step options, or no plan fits
            the budget even with the fewest seeds and steps.
    """
    rows = list(min_seeds)
    missing = {r for pair in comparisons for r in pair} | set(rows)
    missing -= set(seconds_per_step) & set(overhead_s) & set(min_seeds)
    if missing:
        raise ValueError(f"rows {sorted(missing)} have no seconds per step, overhead or seeds")
    if not step_options or not noise:
        raise ValueError("give at least one step option and one test set's noise")
    choices = [range(min_seeds[row], max(min_seeds[row], max_seeds) + 1) for row in rows]
    best: tuple | None = None
    for counts in itertools.product(*choices):
        seeds = dict(zip(rows, counts, strict=True))
        by_set = {
            f"{a}-{b}": {
                test: half_width(
                    seed_sd=n["seed_sd"],
                    image_sd=n["image_sd"],
                    images=int(n["images"]),
                    seeds_a=seeds[a],
                    seeds_b=seeds[b],
                    level=level,
                )
                for test, n in noise.items()
            }
            for a, b in comparisons
        }
        widths = {pair: max(values.values()) for pair, values in by_set.items()}
        worst = max(widths.values())
        for steps in step_options:
            seconds = sum(seeds[r] * (steps * seconds_per_step[r] + overhead_s[r]) for r in rows)
            if seconds > budget_s:
                continue
            met = worst <= target
            # met plans: most steps, then least time; else: smallest worst width, most steps
            key = (not met, -steps, seconds) if met else (True, worst, -steps, seconds)
            if best is None or key < best[0]:
                best = (key, Plan(steps, seeds, seconds, widths, by_set, target, met))
    if best is None:
        raise ValueError(
            f"no plan fits {budget_s / 3600:.2f} h even with the fewest seeds and "
            f"{min(step_options)} steps; raise the budget or lower the steps"
        )
    return best[1]


def run_scores(run: Mapping[str, Any], test: str, metric: str = "psnr") -> dict[str, float]:
    """``{image: score}`` of one run of the long results file on one test set."""
    table = run["per_image"][test]
    return dict(zip(table["names"], table[metric], strict=True))


def seed_spreads(rows: Mapping[str, Mapping[str, Any]], metric: str = "psnr") -> dict:
    """:class:`SeedSpread` of every test set of a long results file's ``rows``."""
    tests = sorted(
        {t for row in rows.values() for run in row["seeds"].values() for t in run["test"]}
    )
    return {
        test: seed_spread(
            {
                name: [run["test"][test][metric] for run in row["seeds"].values()]
                for name, row in rows.items()
            }
        )
        for test in tests
    }


def compare_rows(
    rows: Mapping[str, Mapping[str, Any]],
    comparisons: Sequence[tuple[str, str]],
    *,
    metric: str = "psnr",
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every comparison on every test set of a long results file, with interval and verdict.

    Args:
        rows: ``results["rows"]`` of ``ablation_long.json`` (each row's ``seeds`` map of runs).
        comparisons: ``(A, B)`` pairs; pairs with a row not in ``rows`` are left out.
        metric: ``psnr`` or ``ssim``.
        level: Interval coverage.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        One record per comparison and test set: ``a``, ``b``, ``test``, ``seeds_a``, ``seeds_b``,
        ``seed_sd``, ``mean``, ``low``, ``high``, ``images`` and ``verdict`` (without a measured
        seed spread the verdict is ``"no verdict: seed spread not measured"``).
    """
    spreads = seed_spreads(rows, metric)
    records = []
    for a, b in comparisons:
        if a not in rows or b not in rows:
            continue
        runs_a, runs_b = list(rows[a]["seeds"].values()), list(rows[b]["seeds"].values())
        for test, spread in spreads.items():
            differences = paired_differences(
                [run_scores(run, test, metric) for run in runs_a],
                [run_scores(run, test, metric) for run in runs_b],
            )
            known = spread.dof > 0
            interval = bootstrap_interval(
                differences,
                seed_sd=spread.sd if known else 0.0,
                seeds_a=len(runs_a),
                seeds_b=len(runs_b),
                level=level,
                resamples=resamples,
                seed=seed,
            )
            records.append(
                {
                    "a": a,
                    "b": b,
                    "test": test,
                    "seeds_a": len(runs_a),
                    "seeds_b": len(runs_b),
                    "seed_sd": spread.sd,
                    **dataclasses.asdict(interval),
                    "verdict": verdict(interval)
                    if known
                    else "no verdict: seed spread not measured",
                }
            )
    return records
