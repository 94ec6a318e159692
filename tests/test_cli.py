"""The ``treeattn`` command line."""

from __future__ import annotations

import re
import subprocess
import sys

from treeattn.cli import main


def test_info_reports_params_macs_memory_and_receptive_field(capsys):
    assert main(["info", "hiir_sr_tiny_x2", "--size", "32", "24", "--memory", "--erf"]) == 0
    out = capsys.readouterr().out
    assert "parameters" in out and "132.18 K (132,179)" in out
    assert re.search(r"MACs\s+[\d.]+ M \([\d,]+\) = FLOPs/2", out)
    assert "input 1×3×32×24" in out
    assert re.search(r"peak activations \(inference\)\s+[\d.]+ MB", out)
    assert re.search(r"receptive field\s+258 × 258", out)
    assert re.search(r"effective RF \(centre pixel\)\s+[\d,]+ px", out)


def test_info_without_size_skips_macs(capsys):
    assert main(["info", "hiir_unet_tiny"]) == 0
    out = capsys.readouterr().out
    assert "parameters" in out and "MACs" not in out


def test_unknown_model_fails_with_a_message(capsys):
    assert main(["info", "hiir_b_sr_x5"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_list(capsys):
    assert main(["list", "hiir_b_sr_x?"]) == 0
    assert capsys.readouterr().out.split() == ["hiir_b_sr_x2", "hiir_b_sr_x3", "hiir_b_sr_x4"]
    assert main(["list", "nothing*"]) == 1


def test_module_entry_point_on_hiir_b_x4():
    """The acceptance command, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "treeattn.cli", "info", "hiir_b_sr_x4", "--size", "128", "128"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "14.83 M (14,825,820)" in result.stdout
    assert re.search(r"MACs\s+[\d.]+ G \([\d,]+\)", result.stdout)
