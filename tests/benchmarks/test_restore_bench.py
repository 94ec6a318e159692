"""``benchmarks/restore_bench.py`` runs end to end: whole vs tiled, and one checkout against
another (``--baseline``; here the same checkout twice, so the outputs must agree exactly).
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
def test_baseline_runs_both_checkouts_in_abba_order_and_compares_outputs(tmp_path):
    out = tmp_path / "vs.json"
    command = [
        *(sys.executable, str(ROOT / "benchmarks" / "restore_bench.py")),
        *("--baseline", str(ROOT), "--sizes", "40x56", "--repeats", "2", "--warmup", "0"),
        *("--threads", "1", "--json", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["model"] == "hiir_dn_gray_cpu" and report["threads"] == 1
    (row,) = report["rows"]
    assert row["size"] == [40, 56]
    assert row["order"] == ["new", "old", "old", "new"]
    assert row["max_abs_diff"] == 0.0  # the same code on the same image
    assert row["old_over_new"] == pytest.approx(row["old_s_per_mp"] / row["new_s_per_mp"])
    for name in ("new", "old"):
        runs = row["runs"][name]
        assert len(runs) == 2
        assert all(run["treeattn"] == str(ROOT / "treeattn") for run in runs)
        assert all(run["threads"] == 1 and run["peak_rss_bytes"] > 0 for run in runs)
        assert row[f"{name}_peak_rss_bytes"] == max(run["peak_rss_bytes"] for run in runs)


def test_a_baseline_without_treeattn_is_refused(tmp_path, capsys):
    bench = load_benchmark("restore_bench")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--baseline", str(tmp_path), "--sizes", "32x32"])
    assert exit_info.value.code == 2
    assert "holds no treeattn/ package" in capsys.readouterr().err
