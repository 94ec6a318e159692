"""``benchmarks/layer_bench.py`` runs end to end on narrow layers (timings never asserted)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from bench_scripts import ROOT, load_benchmark

from treeattn.allocator import USER_SETTINGS

_COMMAND = [
    *(sys.executable, str(ROOT / "benchmarks" / "layer_bench.py")),
    *("--dim", "12", "--heads", "2", "--sizes", "64", "--repeats", "1", "--threads", "1"),
    "--no-memory",
]


def _run(tmp_path, *extra, env=None):
    command = [*_COMMAND, *extra, "--out", str(tmp_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _glibc_untouched_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in USER_SETTINGS and k != "GLIBC_TUNABLES"}


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting is glibc's")
def test_layer_bench_times_the_three_layers_with_freed_memory_kept(tmp_path):
    done = _run(tmp_path, "--keep-freed-memory", env=_glibc_untouched_env())
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "layer_bench.json").read_text())
    assert saved["meta"]["keep_freed_memory"] is True
    rows = saved["results"]["64"]
    assert sorted(rows) == ["hiir_p16_P64", "swin_w64", "swin_w8"]
    swin = rows["swin_w8"]
    assert swin["fwd_bwd_ratio_vs_hiir"] == swin["fwd_bwd_s"] / rows["hiir_p16_P64"]["fwd_bwd_s"]
    assert rows["hiir_p16_P64"]["fwd_bwd_ratio_vs_hiir"] == 1.0
    paired = swin["fwd_bwd_paired_vs_hiir"]  # one round: its ratio is every quartile
    assert paired["q1"] == paired["median"] == paired["q3"] == swin["fwd_bwd_ratio_vs_hiir"]
    assert "HiIR / swin_w8 fwd+bwd, per round" in done.stdout


def test_layer_bench_refuses_to_claim_kept_memory_it_could_not_set(tmp_path):
    # an environment setting of glibc's thresholds wins over the flag: the run stops and says so
    env = {**_glibc_untouched_env(), "MALLOC_TRIM_THRESHOLD_": "131072"}
    done = _run(tmp_path, "--keep-freed-memory", env=env)
    assert done.returncode != 0
    assert "--keep-freed-memory" in done.stderr
    assert not (tmp_path / "layer_bench.json").exists()


@pytest.mark.parametrize("always_slow", [False, True])
def test_a_slow_first_run_alone_does_not_cut_a_layer_to_one_timed_run(monkeypatch, always_slow):
    # The first run in a process can pay one-time costs (torch._dynamo imported by the first
    # custom-operator call under autograd); a layer is timed once only if a second run is slow too.
    layer_bench = load_benchmark("layer_bench")
    runs = {}

    def fake_run_once(layer, x, *, backward):
        key = (id(layer), backward)
        runs[key] = runs.get(key, 0) + 1
        if always_slow or runs[key] == 1:
            time.sleep(0.06)
            return 0.06
        return 0.001

    monkeypatch.setattr(layer_bench, "run_once", fake_run_once)
    monkeypatch.setattr(layer_bench, "count_forward_macs", lambda *args, **kwargs: 1)  # (not timed)
    # the two layers the ratio compares (a window-64 SwinLayer takes seconds to build)
    monkeypatch.setattr(
        layer_bench, "LAYERS", {k: layer_bench.LAYERS[k] for k in ("hiir_p16_P64", "swin_w8")}
    )
    args = SimpleNamespace(dim=12, heads=2, repeats=3, no_memory=True, slow_seconds=0.05)
    rows = layer_bench.bench_size(64, args)
    expected = 1 if always_slow else 3
    for row in rows.values():
        assert row["fwd_runs"] == row["fwd_bwd_runs"] == expected
    assert ("fwd_bwd_paired_vs_hiir" in rows["swin_w8"]) is not always_slow
