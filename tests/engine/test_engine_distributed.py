"""Two gloo processes on CPU (accelerate.debug_launcher) behave like one process.

2 processes × batch b and 1 process × batch 2b must give the same parameters after a step, and
the sharded validation must count every test image once (3 images over 2 processes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from engine_testlib import ROOT, TinyNet, one_step

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """The in-process run must not reuse the accelerate state of earlier tests."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _val_record(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return next(r for r in rows if r["kind"] == "val")


def test_two_processes_match_one_process_with_double_batch(image_dirs, tmp_path) -> None:
    train, test = image_dirs
    path = os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")])
    code = "import sys, engine_testlib as t; t.launch_two(*sys.argv[1:])"
    subprocess.run(
        [sys.executable, "-c", code, str(train), str(test), str(tmp_path / "two"), "2"],
        env={**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"},
        check=True,
        timeout=300,
    )
    one_step(train, test, tmp_path / "one", 4)
    two = torch.load(tmp_path / "two" / "weights.pt")
    one = torch.load(tmp_path / "one" / "weights.pt")
    assert (two.pop("world"), one.pop("world")) == (2, 1)
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=0, atol=1e-5)
    torch.manual_seed(0)  # the runs' seed: the same initial weights
    fresh = TinyNet(dropout=0.0).state_dict()
    assert any((fresh[k] - one[k]).abs().max() > 1e-3 for k in one)  # the step did something
    # sharded validation: 3 images over 2 processes, each scored once, same mean
    val_two, val_one = _val_record(tmp_path / "two"), _val_record(tmp_path / "one")
    assert val_two["test/images"] == val_one["test/images"] == 3
    assert val_two["test/psnr"] == pytest.approx(val_one["test/psnr"], abs=1e-4)
    saved = sorted(p.name for p in (tmp_path / "two" / "samples" / "step_1" / "test").iterdir())
    assert saved == ["img00.png", "img01.png", "img02.png"]
