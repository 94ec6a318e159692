"""``benchmarks/layer_bench.py`` runs end to end on narrow layers (timings never asserted)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
from bench_scripts import ROOT

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


def test_layer_bench_refuses_to_claim_kept_memory_it_could_not_set(tmp_path):
    # an environment setting of glibc's thresholds wins over the flag: the run stops and says so
    env = {**_glibc_untouched_env(), "MALLOC_TRIM_THRESHOLD_": "131072"}
    done = _run(tmp_path, "--keep-freed-memory", env=env)
    assert done.returncode != 0
    assert "--keep-freed-memory" in done.stderr
    assert not (tmp_path / "layer_bench.json").exists()
