"""``benchmarks/op_times.py``: each operator's time, summed per step (timings never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from bench_scripts import ROOT, load_benchmark


def test_op_timer_counts_each_operator_call_under_its_name():
    timer = load_benchmark("op_times").OpTimer()
    a, b = torch.randn(8, 4), torch.randn(4, 3)
    with timer:
        (a @ b).relu()
        torch.mm(a, b)
    assert timer.calls["aten.mm"] == 2
    assert timer.calls["aten.relu"] == 1
    assert set(timer.seconds) == set(timer.calls)
    assert all(seconds >= 0 for seconds in timer.seconds.values())


def test_op_timer_files_each_gemm_under_its_shape_and_layout():
    timer = load_benchmark("op_times").OpTimer()
    a, b = torch.randn(8, 4), torch.randn(4, 3)
    column_major = a.t().contiguous().t()  # the same values, laid out column-major
    with timer:
        torch.mm(a, b)
        torch.addmm(torch.zeros(3), a, b)
        torch.mm(column_major, b)
        a.relu()
    assert dict(timer.gemm_calls) == {"[8, 4] × [4, 3]": 2, "[8, 4]ᵀ × [4, 3]": 1}
    assert set(timer.gemm_macs.values()) == {8 * 4 * 3}
    gemm_seconds = timer.seconds["aten.mm"] + timer.seconds["aten.addmm"]
    assert sum(timer.gemm_seconds.values()) == pytest.approx(gemm_seconds, rel=1e-12)


def test_op_times_splits_both_layers_steps_into_parts_that_add_up(tmp_path):
    command = [
        *(sys.executable, str(ROOT / "benchmarks" / "op_times.py")),
        *("--dim", "12", "--heads", "2", "--size", "64", "--steps", "1", "--threads", "1"),
        *("--out", str(tmp_path)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "op_times_64_t1.json").read_text())
    assert sorted(saved["results"]) == ["hiir_p16_P64", "swin_w8"]
    for row in saved["results"].values():
        parts = row["gemm_ms"] + row["treeattn_ms"] + row["other_ops_ms"] + row["between_ops_ms"]
        assert abs(parts - row["step_under_timer_ms"]) < 1e-6 * row["step_under_timer_ms"]
        assert row["calls_per_step"]["aten.mm"] > 0  # the backward's products are seen too
        assert set(row["ops_ms"]) == set(row["calls_per_step"])
        shapes = row["gemm_shapes"]
        assert (
            abs(sum(g["ms"] for g in shapes.values()) - row["gemm_ms"])
            < 1e-9 + 1e-9 * row["gemm_ms"]
        )
        assert sum(g["calls_per_step"] for g in shapes.values()) == sum(
            row["calls_per_step"].get(name, 0) for name in ("aten.mm", "aten.addmm")
        )
        assert all(g["gmac_per_s"] > 0 for g in shapes.values())
    assert "between operators" in done.stdout and "GEMMs by shape" in done.stdout
