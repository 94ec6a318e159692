"""Every recipe runs end to end in its --smoke mode on the embedded data; one runs as a script."""

from __future__ import annotations

import json
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from treeattn.engine import TaskSpec, run_recipe
from treeattn.inference import load_model

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ["denoise", "sr", "jpeg", "deblur", "defocus", "demosaic", "weather"]


def _spec(name: str) -> TaskSpec:
    return runpy.run_path(str(ROOT / "recipes" / f"{name}.py"), run_name="recipe")["SPEC"]


@pytest.mark.parametrize(
    ("name", "extra"),
    [*((name, []) for name in RECIPES), ("defocus", ["--dual-pixel"])],
    ids=[*RECIPES, "defocus-dual-pixel"],
)
def test_smoke_runs_end_to_end(name: str, extra: list[str], tmp_path: Path) -> None:
    spec = _spec(name)
    assert spec.name == name
    args = ["--smoke", "--output_dir", str(tmp_path), "--no-with-tracking", *extra]
    means = run_recipe(spec, args)
    assert means, "no test set was evaluated"
    for test_set, mean in means.items():
        assert math.isfinite(mean["psnr"]) and math.isfinite(mean["input_psnr"])
        report = json.loads((tmp_path / "report" / f"{test_set}.json").read_text())
        assert len(report["rows"]) >= 4
    assert (tmp_path / "step_2" / "trainer_state.json").is_file()
    saved = load_model(tmp_path)  # the run folder's model/, with how it was trained
    assert saved.meta.task == name and saved.provenance.task == name
    assert saved.provenance.views == (2 if "--dual-pixel" in extra else 1)
    assert saved.provenance.level == tuple(spec.defaults.get("level", ()))
    assert saved.provenance.steps == 2
    if spec.data == "paired":
        views = 2 if "--dual-pixel" in extra else 1
        assert len(list((tmp_path / "synthetic" / "train").glob("lq*"))) == views


def test_recipe_runs_as_a_script(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["--smoke", "--output_dir", str(tmp_path), "--no-with-tracking"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "denoise.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "PSNR gain" in done.stdout
    bad = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "denoise.py"), *args, "--model", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0
    assert "error: no model named 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
