"""Before step 0: every data file's header is checked; --overwrite clears only what runs write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from engine_testlib import load_recipe, write_images

from treeattn.data.io import write_image
from treeattn.engine import parse_config
from treeattn.engine.data import build_data
from treeattn.engine.rundir import clear_run, foreign_entries, plan_run


def _denoise_cfg(train: Path, test: Path, out: Path, *extra: str):
    spec = load_recipe("denoise")
    args = ["--train-dir", str(train), "--test-dir", str(test), "--output-dir", str(out), *extra]
    return spec, parse_config(spec, args)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\x89PNG\r\n\x1a\n not really", "could not be decoded"), (b"", "is empty")],
)
def test_a_corrupt_training_image_is_found_before_step_0(image_dirs, tmp_path, content, reason):
    train = tmp_path / "train"
    shutil.copytree(image_dirs[0], train)
    (train / "zz_broken.png").write_bytes(content)
    spec, cfg = _denoise_cfg(train, image_dirs[1], tmp_path / "out")
    with pytest.raises(ValueError, match=f"zz_broken.png.*{reason}.*replace or remove"):
        build_data(spec, cfg, scale=1)


def test_a_tiny_image_in_an_sr_test_set_is_found_before_step_0(tmp_path):
    write_images(tmp_path / "train", 2, channels=3)
    test = write_images(tmp_path / "test", 2, size=24, channels=3)
    write_image(test / "dot.png", torch.rand(3, 1, 1))
    write_image(test / "small.png", torch.rand(3, 5, 5))  # x2: the 2-px border crop leaves 1
    spec = load_recipe("sr")
    args = ["--train-dir", str(tmp_path / "train"), "--test-dir", str(test)]
    cfg = parse_config(spec, [*args, "--output-dir", str(tmp_path / "out")])
    with pytest.raises(ValueError, match=r"2 data file problem") as caught:
        build_data(spec, cfg, scale=2)
    message = str(caught.value)
    assert "dot.png' is 1x1, smaller than the x2 scale" in message
    assert "small.png' (5x5) is too small for the validation metrics" in message
    (test / "dot.png").unlink()
    (test / "small.png").unlink()
    assert len(build_data(spec, cfg, scale=2).tests[0].dataset) == 2


def test_paired_inputs_of_the_wrong_size_are_found_before_step_0(tmp_path):
    for split in ("train", "test"):
        for i in range(2):
            write_image(tmp_path / "gt" / split / f"im{i}.png", torch.rand(3, 24, 24))
            size = 20 if (split, i) == ("train", 1) else 24
            write_image(tmp_path / "lq" / split / f"im{i}.png", torch.rand(3, size, size))
    spec = load_recipe("deblur")
    flags = []
    for split in ("train", "test"):
        flags += [f"--{split}-lq", str(tmp_path / "lq" / split)]
        flags += [f"--{split}-gt", str(tmp_path / "gt" / split)]
    cfg = parse_config(spec, [*flags, "--output-dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match=r"im1.png' is 20x20 but its ground truth .* needs 24x24"):
        build_data(spec, cfg, scale=1)


def _fake_run(folder: Path) -> None:
    (folder / "step_3").mkdir(parents=True)
    (folder / "step_3" / "trainer_state.json").write_text("{}")
    (folder / "log.jsonl").write_text("")
    (folder / "report").mkdir()
    (folder / "denoise" / "1").mkdir(parents=True)  # tensorboard
    (folder / "denoise" / "events.out.tfevents.1.host").write_bytes(b"")
    (folder / "denoise" / "1" / "hparams.yml").write_text("")


def test_overwrite_refuses_a_folder_with_foreign_files_and_removes_nothing(image_dirs, tmp_path):
    out = tmp_path / "out"
    _fake_run(out)
    (out / "thesis.tex").write_text("mine")
    (out / "photos").mkdir()
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    _, cfg = _denoise_cfg(*image_dirs, out, "--overwrite")
    with pytest.raises(ValueError, match=r"2 entries no run writes: photos/, thesis.tex"):
        plan_run(cfg, settings={}, checkpoint=None, state=None)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert foreign_entries(out) == [out / "photos", out / "thesis.tex"]


def test_overwrite_clears_what_runs_write(image_dirs, tmp_path):
    out = tmp_path / "out"
    _fake_run(out)
    _, cfg = _denoise_cfg(*image_dirs, out, "--overwrite")
    plan = plan_run(cfg, settings={}, checkpoint=None, state=None)
    assert plan.clear and foreign_entries(out) == []
    clear_run(out)
    assert list(out.iterdir()) == []


def test_clear_run_keeps_foreign_files(tmp_path):
    _fake_run(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "step_9_notes").mkdir()
    clear_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "step_9_notes"]
