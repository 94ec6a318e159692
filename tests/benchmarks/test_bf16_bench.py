"""``benchmarks/bf16_bench.py``: the CPU flag check, the accuracy measure, a tiny run's JSON."""

from __future__ import annotations

import json

import torch
from bench_scripts import load_benchmark

bf16_bench = load_benchmark("bf16_bench")


def test_relative_error_is_zero_for_equal_tensors_and_scales_with_the_difference():
    b = torch.ones(4)
    assert bf16_bench.relative_error(b.clone(), b) == 0.0
    assert abs(bf16_bench.relative_error(b * 1.01, b) - 0.01) < 1e-6


def test_skips_where_the_cpu_has_no_native_bf16(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bf16_bench, "bf16_flags", lambda: [])
    bf16_bench.main(["--out", str(tmp_path)])
    assert "skipped" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_a_tiny_run_writes_both_precisions_and_their_accuracy(monkeypatch, tmp_path):
    monkeypatch.setitem(bf16_bench.LAYERS, "hiir_p16_P64", lambda: _tiny_hiir())
    monkeypatch.setitem(bf16_bench.LAYERS, "swin_w8", lambda: _tiny_swin())
    monkeypatch.setattr(bf16_bench, "layer_input_channels", 8)
    bf16_bench.main(
        ["--cases", "layer", "--sizes", "8", "--repeats", "1", "--force", "--out", str(tmp_path)]
    )
    results = json.loads((tmp_path / "bf16_bench.json").read_text())["results"]
    assert set(results) == {"hiir_p16_P64_8", "swin_w8_8"}
    for row in results.values():
        assert row["fp32"]["runs"] == row["bf16"]["runs"] == 1
        assert row["fp32_over_bf16"] > 0
        # bf16 keeps 8 significant bits: off by more than float32 rounding, far less than 10 %
        assert 1e-6 < row["output_rel_err"] < 0.1
        assert 1e-6 < row["input_grad_rel_err"] < 0.1


def _tiny_hiir():
    from treeattn.layers import HiIRLayer

    return HiIRLayer(8, 2, (2, 8), data_format="BHWC")


def _tiny_swin():
    from treeattn.layers import SwinLayer

    return SwinLayer(8, 2, 4, data_format="BHWC")
