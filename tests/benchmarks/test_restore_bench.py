"""``benchmarks/restore_bench.py`` runs end to end: whole vs tiled, and one checkout against
another (``--baseline-src``; here the same checkout twice, so the outputs must agree exactly).
Timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bench_scripts import ROOT, load_benchmark


def test_whole_and_tiled_restorations_are_reported(tmp_path, capsys):
    bench = load_benchmark("restore_bench")
    out = tmp_path / "restore.json"
    argv = ["--sizes", "40x72", "--tile", "32", "--overlap", "8", "--threads", "1"]
    bench.main([*argv, "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [(row["size"], row["mode"]) for row in rows] == [
        ([40, 72], "whole"),
        ([40, 72], "tiled"),
    ]
    assert all(row["seconds"] > 0 and row["peak_bytes"] > 0 for row in rows)
    assert "tiled" in capsys.readouterr().out


@pytest.mark.slow
def test_dry_run_against_a_checkout_compares_outputs_and_checks_the_goal(tmp_path):
    out = tmp_path / "vs.json"
    command = [
        *(sys.executable, str(ROOT / "benchmarks" / "restore_bench.py")),
        *("--baseline-src", str(ROOT), "--dry-run", "--sizes", "40x56", "--tile-pixels", "256"),
        *("--threads", "1", "--json", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "goal not met" in done.stdout and "setup check" in done.stdout
    report = json.loads(out.read_text())
    assert report["model"] == "hiir_dn_gray_cpu" and report["threads"] == 1
    assert report["dry_run"] and (report["repeats"], report["warmup"]) == (1, 0)
    assert report["tile_pixels"] == 256
    assert report["checkouts"]["new"]["path"] == str(ROOT)
    (row,) = report["rows"]
    assert row["size"] == [40, 56] and row["order"] == ["new", "old"]
    assert row["max_abs_diff"] == 0.0  # the same code on the same image
    assert row["old_over_new"] == pytest.approx(row["old_s_per_mp"] / row["new_s_per_mp"])
    for name in ("new", "old"):
        (run,) = row["runs"][name]
        assert run["treeattn"] == str(ROOT / "treeattn")
        assert run["threads"] == 1 and run["peak_rss_bytes"] > 0
        assert row[f"{name}_peak_rss_bytes"] == run["peak_rss_bytes"]
    # A dry run measures no 4K image: the goal cannot be met.
    assert not report["goal"]["met"]
    assert any("2160×3840: not measured" in line for line in report["goal"]["failures"])


def test_runs_alternate_new_old_then_old_new():
    bench = load_benchmark("restore_bench")
    assert bench.abba_order(1) == ["new", "old"]
    assert bench.abba_order(3) == ["new", "old", "old", "new", "new", "old"]


def _row(size, *, speedup=3.0, diff=0.0, rss=10**9):
    return {
        "size": list(size),
        "old_over_new": speedup,
        "max_abs_diff": diff,
        "new_peak_rss_bytes": rss,
    }


def test_the_goal_names_each_shortfall():
    bench = load_benchmark("restore_bench")
    assert bench.check_goal([_row((1024, 1024)), _row((2160, 3840))])["met"]
    cases = [
        ([_row((1024, 1024), speedup=1.9), _row((2160, 3840))], "1024×1024: 1.90× faster"),
        ([_row((1024, 1024)), _row((2160, 3840), diff=2e-6)], "2160×3840: outputs differ"),
        ([_row((1024, 1024), diff=None), _row((2160, 3840))], "different shapes"),
        ([_row((1024, 1024)), _row((2160, 3840), rss=9 * 10**9)], "peak RSS 9.00 GB"),
        ([_row((1024, 1024))], "2160×3840: not measured"),
    ]
    for rows, failure in cases:
        goal = bench.check_goal(rows)
        assert not goal["met"]
        assert len(goal["failures"]) == 1 and failure in goal["failures"][0]


def test_a_baseline_without_treeattn_is_refused(tmp_path, capsys):
    bench = load_benchmark("restore_bench")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--baseline-src", str(tmp_path), "--sizes", "32x32"])
    assert exit_info.value.code == 2
    assert "holds no treeattn/ package" in capsys.readouterr().err


def test_comparison_options_need_a_baseline(capsys):
    bench = load_benchmark("restore_bench")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--dry-run"])
    assert exit_info.value.code == 2
    assert "go with --baseline-src" in capsys.readouterr().err
