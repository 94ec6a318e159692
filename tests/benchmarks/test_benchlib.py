"""``benchmarks/benchlib.py``: what the benchmarks record about the machine, and paired ratios."""

from __future__ import annotations

import pytest
from bench_scripts import load_benchmark

_ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse4_2 avx fma avx2 bmi2

processor\t: 1
cpu family\t: 25
model\t\t: 1
flags\t\t: fpu sse4_2 avx fma avx2 avx512f avx512_bf16
"""


def _cache_dir(tmp_path, levels):
    for number, (level, kind, size) in enumerate(levels):
        index = tmp_path / f"index{number}"
        index.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (index / name).write_text(f"{value}\n")
    return tmp_path


def test_cpu_details_tell_two_cpus_of_one_model_name_apart(tmp_path):
    cpu_details = load_benchmark("benchlib").cpu_details
    caches = _cache_dir(
        tmp_path, [(1, "Data", "32K"), (1, "Instruction", "32K"), (2, "Unified", "512K")]
    )
    details = cpu_details(_ZEN3, caches)
    # the first core's fields, vector flags widest first
    assert details == {
        "family": "25",
        "model": "1",
        "vector_flags": ["avx2", "fma"],
        "caches": {"L1d": "32K", "L1i": "32K", "L2": "512K"},
    }
    zen4 = _ZEN3.replace("model\t\t: 1\n", "model\t\t: 17\n", 1).replace(
        "avx2 bmi2", "avx2 avx512f avx512_bf16"
    )
    assert cpu_details(zen4, caches)["vector_flags"] == ["avx512_bf16", "avx512f", "avx2", "fma"]


def test_cpu_details_say_none_where_the_machine_does_not_tell(tmp_path):
    details = load_benchmark("benchlib").cpu_details("", tmp_path / "missing")
    assert details == {"family": None, "model": None, "vector_flags": [], "caches": None}


def test_paired_ratios_are_quartiles_of_each_rounds_ratio():
    paired_ratios = load_benchmark("benchlib").paired_ratios
    # a machine that slows down 10x over the rounds: every round's ratio is still 2
    base = [1.0, 2.0, 5.0, 10.0]
    assert paired_ratios([2 * b for b in base], base) == {"q1": 2.0, "median": 2.0, "q3": 2.0}
    spread = paired_ratios([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    assert spread == {"q1": 2.0, "median": 3.0, "q3": 4.0}
    with pytest.raises(ValueError):  # rounds missing on one side are a bug, not a shorter list
        paired_ratios([1.0, 2.0], [1.0])
