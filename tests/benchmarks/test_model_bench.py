"""``benchmarks/model_bench.py`` runs end to end on tiny models (its timings are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench_scripts import ROOT

SCRIPT = ROOT / "benchmarks" / "model_bench.py"
TINY = ["--model", "hiir_sr_tiny_x2", "--peer", "swin_sr_tiny_x2", "--repeats", "1"]


def _run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), *TINY, "--threads", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_model_bench_writes_every_size_mode_and_ratio(tmp_path):
    done = _run("--sizes", "16", "32", "--train-sizes", "16", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "model_bench.json").read_text())
    assert data["meta"]["model"] == "hiir_sr_tiny_x2" and data["meta"]["bands"] == "auto"
    results = data["results"]
    assert list(results) == ["16", "32"]
    assert "train" in results["16"] and "train" not in results["32"]
    for res in results.values():
        for mode in [m for m in ("fwd", "train") if m in res]:
            ratios = res["ratios"]
            model = res[mode]["hiir_sr_tiny_x2"]["median_s"]
            peer = res[mode]["swin_sr_tiny_x2"]["median_s"]
            assert ratios[f"{mode}_time"] == model / peer
            assert ratios[f"{mode}_per_mac"] == ratios[f"{mode}_time"] / ratios["macs"]
        assert res["macs"]["hiir_sr_tiny_x2"] > 0
    first = results["16"]["fwd"]["hiir_sr_tiny_x2"]["per_pixel_vs_first"]
    assert first == 1.0


def test_bands_off_writes_its_own_file(tmp_path):
    done = _run("--sizes", "16", "--train-sizes", "--bands", "off", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["model_bench_bands_off.json"]


def test_a_training_size_outside_the_sizes_is_refused(tmp_path):
    done = _run("--sizes", "16", "--train-sizes", "32", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "--train-sizes [32] must also be in --sizes" in done.stderr
    assert not list(tmp_path.iterdir())
