"""A run folder written by an earlier engine (``fixtures/run_9b0eb46``) still resumes.

Long trainings are stopped and resumed across changes of the engine: what a run wrote
(``config.yaml``, ``run.json``, ``step_N/``) must stay readable, its settings must compare equal,
and resuming it must train exactly as the old engine trained straight through.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from engine_testlib import FIXTURE_ARGS, TinyNet, train
from safetensors.torch import load_file

from treeattn.engine import parse_config, prepare_run
from treeattn.engine.config import dump_yaml
from treeattn.engine.rundir import CONFIG_FILE, RUN_FILE, run_settings

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of the killed run (the fixture itself is never written)."""
    return Path(shutil.copytree(FIXTURES / "run_9b0eb46", tmp_path / "run"))


def _recorded(folder: Path) -> dict:
    return json.loads((folder / RUN_FILE).read_text())


def test_old_config_yaml_reads_back_and_is_written_the_same(denoise_spec, old_run) -> None:
    config = old_run / CONFIG_FILE
    cfg = parse_config(denoise_spec, ["--config", str(config)])
    assert cfg.level == [0.0, 50.0] and cfg.test_level == [25.0]
    assert cfg.patch_schedule == ["3:24:2"] and cfg.max_steps == 4
    settings = run_settings(cfg, task="denoise", mixed_precision="no", num_processes=1)
    assert settings == _recorded(old_run)["settings"]
    dump_yaml(cfg, denoise_spec, old_run / "again.yaml")
    assert (old_run / "again.yaml").read_text() == config.read_text()


def test_old_run_resumes_from_its_flags(denoise_spec, old_run) -> None:
    args = [
        *FIXTURE_ARGS,
        "--output-dir",
        str(old_run),
        "--resume-from-checkpoint",
        "latest",
        "--cpu",
    ]
    run = prepare_run(denoise_spec, parse_config(denoise_spec, args), model_fn=TinyNet)
    run.accelerator.end_training()
    assert run.progress.step == 2 and run.run_id == _recorded(old_run)["run_id"]
    assert run.settings == _recorded(old_run)["settings"]


def test_old_run_resumes_from_its_config_as_the_old_engine_trained(denoise_spec, old_run) -> None:
    # On the CPU, as the fixture was written — but on another CPU: convolution kernels round
    # differently from one CPU to the next (one weight 1 float32 step apart between the AMD EPYC
    # that wrote the fixture and an Intel Xeon), so the weights are compared to float32 rounding;
    # a resume that lost any state (RNG, optimizer, schedule) moves them by orders of magnitude
    # more. Bit-identical resumption on one machine: test_engine_trainer, test_engine_phases.
    args = ["--config", str(old_run / CONFIG_FILE), "--output-dir", str(old_run), "--cpu"]
    resumed = train(denoise_spec, [*args, "--resume-from-checkpoint", "latest"])
    assert resumed.progress.step == 4 and resumed.run_id == _recorded(old_run)["run_id"]
    expected = load_file(FIXTURES / "straight_step_4.safetensors")
    got = load_file(old_run / "step_4" / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6, atol=1e-8, msg=key)
