"""``benchmarks/ablation_stats.py`` and ``ablation_cost.py`` on synthetic results."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bench_scripts import load_benchmark

stats = load_benchmark("ablation_stats")
cost = load_benchmark("ablation_cost")


def _noise(images: int, *, seed: int = 1, sd: float = 0.1) -> np.ndarray:
    """Per-image noise with mean exactly 0."""
    values = np.random.default_rng(seed).normal(0.0, sd, images)
    return values - values.mean()


@pytest.mark.parametrize("shift, expected", [(0.3, "better"), (-0.3, "worse")])
def test_a_known_shift_is_detected(shift, expected):
    interval = stats.bootstrap_interval(shift + _noise(60))
    assert interval.low < shift < interval.high
    assert interval.mean == pytest.approx(shift)
    assert stats.verdict(interval) == expected


def test_zero_shift_is_no_difference():
    interval = stats.bootstrap_interval(_noise(60))
    assert interval.low < 0 < interval.high
    assert stats.verdict(interval) == stats.NO_DIFFERENCE


def test_the_interval_shrinks_with_more_images():
    widths = [stats.bootstrap_interval(_noise(n)).half_width for n in (20, 80, 320)]
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 2.5  # about 1/sqrt(16) = 1/4 of the first


def test_the_seed_term_widens_the_interval_and_more_seeds_narrow_it():
    differences = 0.1 + _noise(68)
    images_only = stats.bootstrap_interval(differences)
    one_seed = stats.bootstrap_interval(differences, seed_sd=0.1)
    four_seeds = stats.bootstrap_interval(differences, seed_sd=0.1, seeds_a=4, seeds_b=4)
    assert images_only.half_width < four_seeds.half_width < one_seed.half_width
    assert stats.verdict(images_only) == "better"  # 0.1 dB over 68 images of 0.1 dB spread
    assert stats.verdict(one_seed) == stats.NO_DIFFERENCE  # but retrained models move as much


def test_the_bootstrap_width_matches_the_planning_formula():
    differences = _noise(68, sd=0.2)
    interval = stats.bootstrap_interval(differences, seed_sd=0.08, seeds_a=2, seeds_b=3)
    planned = stats.half_width(
        seed_sd=0.08, image_sd=float(np.std(differences)), images=68, seeds_a=2, seeds_b=3
    )
    assert interval.half_width == pytest.approx(planned, rel=0.05)


def test_the_interval_is_seeded():
    differences = _noise(30)
    first = stats.bootstrap_interval(differences, seed_sd=0.05, seed=3)
    assert stats.bootstrap_interval(differences, seed_sd=0.05, seed=3) == first
    assert stats.bootstrap_interval(differences, seed_sd=0.05, seed=4) != first


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"differences": [0.1]}, "2 images"),
        ({"differences": [0.1, 0.2], "seed_sd": -1.0}, "seed_sd"),
        ({"differences": [0.1, 0.2], "seeds_a": 0}, "seeds_a"),
        ({"differences": [0.1, 0.2], "resamples": 10}, "resamples"),
        ({"differences": [0.1, 0.2], "level": 1.0}, "level"),
    ],
)
def test_bad_bootstrap_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_interval(**kwargs)


def test_paired_differences_average_the_seeds_per_image():
    a = [{"x": 30.0, "y": 31.0}, {"x": 32.0, "y": 33.0}]
    b = [{"x": 30.0, "y": 30.0}]
    assert stats.paired_differences(a, b).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="different images"):
        stats.paired_differences(a, [{"x": 30.0, "z": 30.0}])
    with pytest.raises(ValueError, match="different images"):
        stats.seed_average([{"x": 1.0}, {"y": 1.0}])


def test_seed_spread_pools_the_rows_with_several_seeds():
    spread = stats.seed_spread({"a": [1.0, 3.0], "b": [2.0, 2.0, 2.0], "c": [5.0]})
    assert spread.dof == 3
    assert spread.sd == pytest.approx(math.sqrt(2 / 3))  # (2·1 + 0·2) / 3
    assert spread.largest_range == 2.0
    none = stats.seed_spread({"a": [1.0], "b": [2.0]})
    assert none.dof == 0 and math.isnan(none.sd)


def _plan(seed_sd: float, budget_s: float):
    return stats.plan_study(
        seconds_per_step={"a": 1.0, "b": 1.0},
        overhead_s={"a": 0.0, "b": 0.0},
        noise={"set": {"seed_sd": seed_sd, "image_sd": 0.0, "images": 10}},
        comparisons=[("a", "b")],
        min_seeds={"a": 2, "b": 2},
        step_options=[100, 200, 300],
        budget_s=budget_s,
    )


def test_a_plan_meeting_the_target_takes_the_most_steps_that_fit():
    # 1.96 · 0.05 · sqrt(1/2 + 1/2) = 0.098 dB: two seeds each suffice
    plan = _plan(0.05, 1000.0)
    assert plan.meets_target and plan.worst <= 0.1
    assert plan.seeds == {"a": 2, "b": 2} and plan.steps == 200  # 4 runs × 300 s > 1000 s
    assert plan.seconds == 800.0
    assert plan.by_set == {"a-b": {"set": pytest.approx(1.96 * 0.05, rel=1e-3)}}


def test_an_unreachable_target_gets_the_narrowest_plan_that_fits():
    plan = _plan(0.2, 1000.0)
    assert not plan.meets_target
    assert plan.steps == 100 and plan.seeds == {"a": 5, "b": 5}  # 10 runs: all the budget
    assert plan.worst == pytest.approx(1.96 * 0.2 * math.sqrt(2 / 5), rel=1e-3)
    with pytest.raises(ValueError, match="no plan fits"):
        _plan(0.2, 100.0)


def _run(scores: dict[str, float], *, test: str = "set") -> dict:
    names = sorted(scores)
    return {
        "test": {test: {"psnr": float(np.mean([scores[n] for n in names]))}},
        "per_image": {test: {"names": names, "psnr": [scores[n] for n in names]}},
    }


def _rows(shift: float, *, seeds: int = 2) -> dict:
    """Rows a and b over 40 images; a is b + shift; seeds move each model by ±0.01 dB."""
    base = {f"img{i:02d}": 28.0 + 0.5 * math.sin(i) for i in range(40)}

    def row(offset: float) -> dict:
        runs = {
            str(s): _run({n: v + offset + 0.01 * (-1) ** s for n, v in base.items()})
            for s in range(seeds)
        }
        return {"seeds": runs}

    return {"a": row(shift), "b": row(0.0)}


def test_compare_rows_states_the_verdict_of_each_comparison():
    better = stats.compare_rows(_rows(0.2), [("a", "b"), ("b", "a"), ("a", "missing")])
    assert [(r["a"], r["b"], r["verdict"]) for r in better] == [
        ("a", "b", "better"),
        ("b", "a", "worse"),
    ]
    assert better[0]["mean"] == pytest.approx(0.2)
    assert better[0]["seed_sd"] == pytest.approx(0.02 / math.sqrt(2))
    same = stats.compare_rows(_rows(0.0), [("a", "b")])
    assert same[0]["verdict"] == stats.NO_DIFFERENCE
    unmeasured = stats.compare_rows(_rows(0.2, seeds=1), [("a", "b")])
    assert unmeasured[0]["verdict"].startswith("no verdict")


def test_interpolation_is_linear_and_never_extrapolates():
    curve = [(10.0, 20.0), (20.0, 24.0)]
    assert cost.interpolate(curve, 15.0) == pytest.approx(22.0)
    assert cost.interpolate(curve, 20.0) == 24.0
    assert cost.interpolate(curve, 25.0) is None and cost.interpolate(curve, 5.0) is None


def _curve_row(points: list[tuple[float, float]], *, seeds: int = 1, macs: int = 1) -> dict:
    runs = {
        str(s): {
            "val_curve": [{"train_time_s": t, "v/psnr": v + 0.1 * s} for t, v in points],
            "s_per_step": 1.0,
            "train_s": points[-1][0],
            "test": {"set": {"psnr": points[-1][1] + 0.1 * s}},
        }
        for s in range(seeds)
    }
    return {"seeds": runs, "macs_per_pixel": macs}


def test_equal_time_compares_where_every_row_has_trained():
    # a is quicker per step: ahead at 30 s, although b ends higher after 60 s
    rows = {
        "a": _curve_row([(10, 20), (20, 25), (30, 27)], seeds=2, macs=100),
        "b": _curve_row([(20, 24), (40, 28), (60, 29)], macs=200),
    }
    result = cost.equal_time(rows, "v/psnr")
    assert result["time_s"] == 30
    assert result["values"]["a"] == pytest.approx(27.05)  # the mean of its two seeds
    assert result["values"]["b"] == pytest.approx(26.0)
    assert result["winner"] == "a" and result["margin"] == pytest.approx(1.05)
    late = cost.equal_time(rows, "v/psnr", at=50)
    assert late["values"] == {"b": pytest.approx(28.5)} and late["margin"] is None
    with pytest.raises(ValueError, match="no row"):
        cost.equal_time(rows, "other/psnr")


def test_the_cost_table_marks_the_pareto_rows():
    rows = {
        "cheap": _curve_row([(10, 27)], macs=100),
        "dear_better": _curve_row([(20, 28)], macs=200),
        "dear_worse": _curve_row([(30, 26)], macs=300),
    }
    table = cost.cost_table(rows, "set")
    assert [r["row"] for r in table] == ["cheap", "dear_better", "dear_worse"]
    assert [r["pareto_macs"] for r in table] == [True, True, False]
    assert [r["pareto_time"] for r in table] == [True, True, False]


def test_the_summary_tables_state_each_verdict_interval_and_equal_time_winner():
    summary = load_benchmark("ablation_summary")
    rows = _rows(0.2)
    for name, row in rows.items():
        row["macs_per_pixel"] = 1000 if name == "a" else 800
        for run in row["seeds"].values():
            run["test"]["set"]["ssim"] = 0.8
            run["s_per_step"] = 0.5 if name == "a" else 0.4
            ahead = 1.0 if name == "a" else 0.0
            run["val_curve"] = [{"train_time_s": t, "v/psnr": 20 + t + ahead} for t in (1, 2)]
    rows["c"] = {"seeds": {}, "macs_per_pixel": 1}  # not trained yet: left out
    comparisons = [["a", "b", "the change", "higher"], ["c", "b", "untrained", None]]
    results = {"rows": rows, "meta": {"settings": {"max_steps": 9}, "comparisons": comparisons}}
    text = summary.summary(results)
    record = stats.compare_rows({k: rows[k] for k in "ab"}, [("a", "b")])[0]
    interval = f"{record['mean']:+.3f} [{record['low']:+.3f}, {record['high']:+.3f}]"
    line = next(line for line in text.splitlines() if line.startswith("| `a − b`"))
    assert interval in line and "(2/2 seeds): **better**" in line
    assert "`a` +1.000 dB at 2 s" in line  # the equal-time column of curve v/psnr
    assert "equal time, v |" in text and "`c − b`" not in text and "| `c` |" not in text
    assert text.startswith("4 runs of 9 steps; seed sd of a set mean (pooled): set 0.014 dB")
    row_a = next(line for line in text.splitlines() if line.startswith("| `a` |"))
    assert row_a.startswith("| `a` | 2 | 1,000 | 0.500 | 28.")
    assert row_a.endswith(" ± 0.01 / 0.8000 |")
