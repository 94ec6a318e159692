"""``benchmarks/gpu_check.py --dry-run`` walks through every section on the CPU (timings are
never asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from functools import partial

import pytest
import torch
from bench_scripts import ROOT, load_benchmark

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
SECTIONS = [
    "parity_layer",
    "parity_models",
    "attention_backends",
    "band_restore",
    "train_denoise_bf16",
    "timing_layer",
    "timing_model",
    "timing_compile",
]


def _run(out, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def _errors(tree):
    """Every error dict (one with ``max_rel``) in nested figures."""
    if isinstance(tree, dict):
        if "max_rel" in tree:
            yield tree
        for value in tree.values():
            yield from _errors(value)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    done = _run(out)
    assert (out / "gpu_check.json").is_file(), done.stderr[-3000:]
    data = json.loads((out / "gpu_check.json").read_text())
    return done, data, out


def test_every_section_passes_and_only_the_json_and_log_are_written(dry_run):
    done, data, out = dry_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.log"]
    log = (out / "gpu_check.log").read_text()
    sections = data["results"]["sections"]
    assert list(sections) == SECTIONS
    assert {name: row["status"] for name, row in sections.items()} == dict.fromkeys(
        SECTIONS, "pass"
    )
    assert data["results"]["summary"]["pass"] == SECTIONS
    meta = data["meta"]
    assert meta["device"] == "cpu" and meta["dry_run"] is True
    assert {"torch", "cuda", "cudnn", "tf32_defaults", "packages"} <= set(meta)
    for name in SECTIONS:
        assert f"{name}: pass" in log


def test_cpu_against_cpu_parity_is_exact_in_fp32_and_close_in_bf16(dry_run):
    _, data, _ = dry_run
    sections = data["results"]["sections"]
    models = sections["parity_models"]["figures"]
    assert {"hiir_sr_tiny_x2", "hiir_b_sr_x2", "hiir_dn_gray_cpu"} <= set(models)
    for section in ("parity_layer", "parity_models"):
        rows = {k: v for k, v in sections[section]["figures"].items() if isinstance(v, dict)}
        for label, row in rows.items():
            if "fp32" not in row:
                continue
            for part in ("out", "grad_input", "grad_params"):
                assert row["fp32"][part]["max_abs"] <= 1e-6, (label, part)
                bf16 = row["bf16"][part]
                assert math.isfinite(bf16["max_rel"]) and bf16["rel_l2"] <= 0.15, (label, part)
            assert row["bf16"]["out"]["max_abs"] > 0  # autocast did run in bfloat16
    every = list(_errors({s: sections[s]["figures"] for s in sections}))
    assert every and all(math.isfinite(e["max_abs"]) for e in every)


def test_attention_backends_match_float64_math(dry_run):
    _, data, _ = dry_run
    section = data["results"]["sections"]["attention_backends"]
    kernels = section["figures"]["kernels"]
    assert {key.split("/")[0] for key in kernels} >= {"math", "sdpa", "auto"}
    for key, row in kernels.items():
        assert row["required"] and row["ok"], key
        assert set(row) >= {"out", "q", "k", "v", "bias"}
        if "/fp32/" in key:
            assert row["bias"]["rel_l2"] <= 1e-5, key
    assert set(section["figures"]["layers"]) >= {"sdpa", "auto"}
    if section["figures"]["xformers"]["version"] is None:
        assert any("xformers skipped" in note for note in section["notes"])


def test_band_restore_training_and_timings_report_their_figures(dry_run):
    _, data, _ = dry_run
    sections = data["results"]["sections"]
    band = sections["band_restore"]["figures"]
    assert band["banded_vs_whole"]["max_abs"] <= 1e-5
    train = sections["train_denoise_bf16"]["figures"]
    assert train["mixed_precision"] == "bf16" and train["steps"] == 20
    assert train["loss_last"] < train["loss_first"]
    assert [step for step, _ in train["loss_curve"]] == list(range(2, 21, 2))
    assert train["steps_per_s"] > 0
    for row in train["test"].values():
        assert row["psnr"] > row["input_psnr"]
    layer = sections["timing_layer"]["figures"]["16"]
    for mode in ("fwd", "train"):
        names = {f"{n}/{p}" for n in ("HiIRLayer", "SwinLayer") for p in ("fp32", "bf16")}
        assert set(layer[mode]) == names
        for prec in ("fp32", "bf16"):
            ratio = layer["ratios"][f"{mode}_{prec}"]
            hiir, swin = layer[mode][f"HiIRLayer/{prec}"], layer[mode][f"SwinLayer/{prec}"]
            assert ratio == hiir["median_s"] / swin["median_s"]
            assert layer["ratios"][f"{mode}_{prec}_per_mac"] == ratio / layer["mac_ratio"]
    model = sections["timing_model"]["figures"]["16"]
    assert set(model["macs"]) == {"hiir_sr_tiny_x2", "swin_sr_tiny_x2"}
    assert {"fwd_fp32", "train_bf16"} <= set(model["ratios"])
    compiled = sections["timing_compile"]["figures"]["layers"]
    assert set(compiled["compile"]) == {"HiIRLayer", "SwinLayer"}
    assert "train_compiled_HiIRLayer_vs_SwinLayer" in compiled["ratios"]


def test_a_spent_budget_skips_every_section_with_a_note(tmp_path):
    done = _run(tmp_path, "--budget-s", "0.5")
    assert done.returncode == 0, done.stderr[-3000:]
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["results"]["sections"]
    assert list(sections) == SECTIONS
    for row in sections.values():
        assert row["status"] == "skipped" and row["note"].startswith("budget:")


def test_a_section_outrunning_the_budget_is_stopped_and_recorded(tmp_path):
    done = _run(tmp_path, "--budget-s", "6", "--sections", "train_denoise_bf16")
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["results"]["sections"]
    assert list(sections) == ["train_denoise_bf16"]
    row = sections["train_denoise_bf16"]
    assert row["status"] == "stopped" and "--budget-s ran out" in row["note"]
    assert done.returncode == 0  # stopped by the budget is neither a failure nor an error


def test_band_restore_times_each_setting_after_an_untimed_run(dry_run):
    _, data, _ = dry_run
    band = data["results"]["sections"]["band_restore"]["figures"]
    for setting in ("whole", "banded", "whole_bf16", "banded_bf16"):
        assert band[setting]["runs"] == 3 and band[setting]["seconds"] > 0


def test_the_script_imports_without_matplotlib():
    # matplotlib (the engine's curves) is needed by the training section only: without it the
    # script still starts, and that section alone reports the ImportError
    blocker = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError('matplotlib blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "import gpu_check\n"
        "print('imported', 'matplotlib' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["imported", "False"]


def test_backward_passes_run_under_the_precisions_tf32_setting(monkeypatch):
    # TF32 flags are read when each CUDA kernel runs: the backward of a float32 check must run
    # with TF32 off as its forward does, not with torch's defaults (cuDNN's: on)
    gpu_check = load_benchmark("gpu_check")
    states: list[bool | None] = []
    inside = [None]

    class Recording:
        def __init__(self, enabled):
            self.enabled = enabled

        def __enter__(self):
            inside[0] = self.enabled

        def __exit__(self, *exc):
            inside[0] = None

    monkeypatch.setattr(gpu_check, "tf32", Recording)

    class Probe(torch.nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            out.register_hook(lambda grad: states.append(inside[0]))
            return out

    cpu = torch.device("cpu")
    x = torch.randn(2, 4)
    for name, expected in (("fp32", False), ("tf32", True), ("bf16", None)):
        states.clear()
        gpu_check.forward_backward(Probe(4, 3), x, device=cpu, name=name)
        assert states == [expected], name
        states.clear()
        step = gpu_check.train_step(
            Probe(4, 3),
            x,
            torch.randn(2, 3),
            partial(gpu_check.precision, cpu, name),
            partial(gpu_check.backward_precision, cpu, name),
        )
        step()
        assert states == [expected], name
