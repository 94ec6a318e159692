"""``benchmarks/band_bench.py`` runs end to end on a narrow layer (timings never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench_scripts import ROOT


def test_band_bench_times_whole_maps_and_every_smaller_tile(tmp_path):
    command = [
        *(sys.executable, str(ROOT / "benchmarks" / "band_bench.py")),
        *("--dim", "12", "--heads", "2", "--sizes", "64", "128", "--tiles", "64", "128"),
        *("--repeats", "1", "--threads", "1", "--out", str(tmp_path)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "band_bench.json").read_text())["results"]
    assert {size: sorted(rows) for size, rows in results.items()} == {
        "64": ["whole"],  # no tile is smaller than the map
        "128": ["tile64", "whole"],
    }
    row = results["128"]["tile64"]
    assert row["vs_whole"] == row["median_s"] / results["128"]["whole"]["median_s"]
    assert row["us_per_pixel"] == row["median_s"] / 128**2 * 1e6
