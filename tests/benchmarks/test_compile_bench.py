"""``benchmarks/compile_bench.py``: a tiny run (dynamo only) writes its graphs, times and ratios."""

from __future__ import annotations

import json

from bench_scripts import load_benchmark

from treeattn.layers import HiIRLayer, SwinLayer

compile_bench = load_benchmark("compile_bench")


def test_a_tiny_run_reports_one_graph_per_layer_and_both_ratios(monkeypatch, tmp_path):
    monkeypatch.setitem(
        compile_bench.LAYERS,
        "hiir",
        lambda dim, heads: HiIRLayer(dim, heads, (2, 8), data_format="BHWC"),
    )
    monkeypatch.setitem(
        compile_bench.LAYERS,
        "swin",
        lambda dim, heads: SwinLayer(dim, heads, 4, data_format="BHWC"),
    )
    args = ["--sizes", "8", "--dim", "8", "--heads", "2", "--repeats", "2", "--backend", "eager"]
    compile_bench.main([*args, "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "compile_bench.json").read_text())
    assert saved["meta"]["backend"] == "eager" and saved["meta"]["dynamic"] is False
    assert saved["meta"]["keep_freed_memory"] is False  # glibc's defaults unless asked
    row = saved["results"]["8"]
    for name in ("hiir", "swin"):
        assert (row[name]["graphs"], row[name]["graph_breaks"]) == (1, 0)
        assert min(row[name][key] for key in ("compile_s", "eager_s", "compiled_s")) > 0
    assert set(row["ratios"]) == {"eager_hiir_vs_swin", "compiled_hiir_vs_swin"}
    assert all(ratio > 0 for ratio in row["ratios"].values())
