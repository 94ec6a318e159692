"""A recipe killed (SIGKILL) mid-run resumes from its last complete checkpoint, bit-exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--smoke",
    "--max-steps",
    "40",
    "--checkpointing-steps",
    "2",
    "--keep-checkpoints",
    "50",
    "--val-every",
    "0",
    "--save-images",
    "0",
    "--no-with-tracking",
    "--threads",
    "1",
]  # fmt: skip (one thread: tiny tensors, and immune to a busy second core)


def _command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "recipes" / "denoise.py"),
        *ARGS,
        "--output_dir",
        str(out),
        *extra,
    ]


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def test_sigkill_then_resume_matches_straight_run(tmp_path: Path) -> None:
    subprocess.run(
        _command(tmp_path / "a"), env=_env(), check=True, capture_output=True, timeout=300
    )
    killed = tmp_path / "b"
    proc = subprocess.Popen(
        _command(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while not (killed / "step_2" / "trainer_state.json").is_file():
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before step 2"
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=60)
    assert not (killed / "step_40").exists(), "the run finished before it was killed"
    done = subprocess.run(
        _command(killed, "--resume_from_checkpoint", "latest"),
        env=_env(), check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "resumed from" in done.stdout
    straight = load_file(tmp_path / "a" / "step_40" / "model.safetensors")
    resumed = load_file(killed / "step_40" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
