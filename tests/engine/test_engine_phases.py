"""Crop phases (``--patch-schedule``): parsing, the loaders each phase trains on, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_testlib import base_args
from engine_testlib import train as _run

from treeattn.engine.checkpoint import list_checkpoints
from treeattn.engine.phases import Phase, crop_phases, parse_phase, phase_at


def test_parse_and_order() -> None:
    phases = crop_phases(
        patch_size=64, batch_size=8, schedule=["10:128:2", "20:176:1"], max_steps=30
    )
    assert phases == (Phase(0, 64, 8), Phase(10, 128, 2), Phase(20, 176, 1))
    assert [phase_at(phases, s) for s in (0, 9, 10, 19, 20, 29)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (["10:128"], "three integers"),
        (["a:1:1"], "three integers"),
        (["0:128:2"], ">= 1"),
        (["10:0:2"], ">= 1"),
        (["10:64:2", "10:128:1"], "must increase"),
        (["30:128:2"], "never train"),
    ],
)
def test_bad_schedules_are_named(schedule, message) -> None:
    with pytest.raises(ValueError, match=message):
        crop_phases(patch_size=64, batch_size=8, schedule=schedule, max_steps=30)


def test_parse_phase_names_the_entry() -> None:
    with pytest.raises(ValueError, match="'8000-128-2'"):
        parse_phase("8000-128-2")


def test_the_recipe_flag_is_checked_where_it_enters(denoise_spec, image_dirs, tmp_path) -> None:
    from treeattn.engine import parse_config

    train, test = image_dirs
    args = [*base_args(train, test, tmp_path), "--patch-schedule", "9:24:1"]
    with pytest.raises(ValueError, match="never train"):
        parse_config(denoise_spec, args)


def _shapes(run) -> list[tuple[int, ...]]:
    return [tuple(next(iter(loader))["gt"].shape) for loader in run.train_loaders]


def test_each_phase_trains_on_its_crops(denoise_spec, image_dirs, tmp_path: Path) -> None:
    train, test = image_dirs
    args = [*base_args(train, test, tmp_path), "--patch-schedule", "2:24:1", "3:32:3"]
    run = _run(denoise_spec, args)
    assert _shapes(run) == [(2, 1, 16, 16), (1, 1, 24, 24), (3, 1, 32, 32)]
    assert run.progress.step == 4 and run.phase == 2
    # each phase switch starts a new epoch
    assert run.progress.epoch >= 2


def test_resume_across_phases_is_bit_identical(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    schedule = ["--patch-schedule", "2:24:1", "3:32:3", "--max-steps", "5"]
    straight = _run(denoise_spec, [*base_args(train, test, tmp_path / "a"), *schedule])
    for stop in (2, 3):  # a checkpoint exactly at a phase switch, and one inside a phase
        out = tmp_path / f"b{stop}"
        args = [*base_args(train, test, out), *schedule, "--checkpointing-steps", "1"]
        _run(denoise_spec, args, stop_at=stop)
        assert max(s for s, _ in list_checkpoints(out)) == stop
        resumed = _run(denoise_spec, [*args, "--resume_from_checkpoint", "latest"])
        assert resumed.progress == straight.progress
        a = straight.accelerator.unwrap_model(straight.model).state_dict()
        b = resumed.accelerator.unwrap_model(resumed.model).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_schedule_is_refused(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    args = [*base_args(train, test, tmp_path), "--checkpointing-steps", "2"]
    _run(denoise_spec, [*args, "--patch-schedule", "2:24:1"], stop_at=2)
    with pytest.raises(ValueError, match="patch_schedule"):
        _run(
            denoise_spec,
            [*args, "--patch-schedule", "3:24:1", "--resume_from_checkpoint", "latest"],
        )
