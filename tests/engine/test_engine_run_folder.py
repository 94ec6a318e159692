"""One run per output folder: run ids, --overwrite, settings checked at resume, checksums."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from engine_testlib import TinyNet, base_args, train

from treeattn.engine import InputError, parse_config, prepare_run, run_recipe
from treeattn.engine.checkpoint import (
    CHECKSUM_FILE,
    STATE_FILE,
    CheckpointError,
    list_checkpoints,
    verify_checkpoint,
)
from treeattn.engine.rundir import CONFIG_FILE, RUN_FILE, read_run


def _prepare(spec, args):
    return prepare_run(spec, parse_config(spec, args), model_fn=TinyNet)


def _weights(run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.accelerator.unwrap_model(run.model).state_dict().items()}


def test_a_folder_holding_another_run_is_refused_or_cleared(
    denoise_spec, image_dirs, tmp_path
) -> None:
    train_dir, test_dir = image_dirs
    out = tmp_path / "out"
    args = [*base_args(train_dir, test_dir, out), "--checkpointing-steps", "2"]
    first = train(denoise_spec, args)
    assert [s for s, _ in list_checkpoints(out)] == [2, 4]
    assert read_run(out)["run_id"] == first.run_id
    # another run into the same folder, without resuming: refused, nothing touched
    with pytest.raises(ValueError, match=f"already holds run {first.run_id}.*--overwrite"):
        _prepare(denoise_spec, [*args, "--max-steps", "2"])
    assert [s for s, _ in list_checkpoints(out)] == [2, 4]
    # --overwrite clears the old run: its step_4 can no longer be taken for 'latest'
    second = train(denoise_spec, [*args, "--max-steps", "2", "--overwrite"])
    assert second.run_id != first.run_id
    assert [s for s, _ in list_checkpoints(out)] == [2]
    resumed = _prepare(
        denoise_spec, [*args, "--max-steps", "2", "--resume-from-checkpoint", "latest"]
    )
    assert (resumed.run_id, resumed.progress.step) == (second.run_id, 2)


def test_a_folder_of_other_files_is_used_and_kept(denoise_spec, image_dirs, tmp_path) -> None:
    train_dir, test_dir = image_dirs
    (tmp_path / "notes.txt").write_text("mine")
    train(denoise_spec, [*base_args(train_dir, test_dir, tmp_path), "--max-steps", "1"])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_run_without_results_may_be_started_again(denoise_spec, image_dirs, tmp_path) -> None:
    train_dir, test_dir = image_dirs
    args = base_args(train_dir, test_dir, tmp_path)
    first = _prepare(denoise_spec, args)  # e.g. failed at its first step: no log, no checkpoint
    assert read_run(tmp_path)["run_id"] == first.run_id
    second = _prepare(denoise_spec, [*args, "--lr", "1e-3"])
    assert second.run_id != first.run_id and read_run(tmp_path)["run_id"] == second.run_id


def test_resume_with_changed_settings_names_them(denoise_spec, image_dirs, tmp_path) -> None:
    train_dir, test_dir = image_dirs
    args = [*base_args(train_dir, test_dir, tmp_path), "--max-steps", "2"]
    train(denoise_spec, args)
    resume = [*args, "--resume-from-checkpoint", "latest"]
    with pytest.raises(ValueError, match=r"lr 0\.01 -> 0\.02.*Fix.*--overwrite"):
        _prepare(denoise_spec, [*resume, "--lr", "2e-2"])
    with pytest.raises(ValueError, match="optimizer 'adamw' -> 'adam'; seed 0 -> 1"):
        _prepare(denoise_spec, [*resume, "--optimizer", "adam", "--seed", "1"])
    with pytest.raises(ValueError, match=r"model_overrides \{\} -> \{'dims'"):
        _prepare(denoise_spec, [*resume, "--model-overrides", "dims=[8, 16]"])
    # settings that do not define the training may change
    run = _prepare(denoise_spec, [*resume, "--val-every", "1", "--max-minutes", "3"])
    assert run.progress.step == 2


def test_a_checkpoint_of_another_run_is_refused(denoise_spec, image_dirs, tmp_path) -> None:
    train_dir, test_dir = image_dirs
    a, b = tmp_path / "a", tmp_path / "b"
    train(denoise_spec, [*base_args(train_dir, test_dir, a), "--max-steps", "2"])
    train(denoise_spec, [*base_args(train_dir, test_dir, b), "--max-steps", "1"])
    shutil.copytree(a / "step_2", b / "step_2")  # a stale step of run a in run b's folder
    args = [*base_args(train_dir, test_dir, b), "--max-steps", "1"]
    with pytest.raises(ValueError, match=f"belongs to run {read_run(a)['run_id']}"):
        _prepare(denoise_spec, [*args, "--resume-from-checkpoint", "latest"])
    # a checkpoint of another folder may continue in a new one, as the same run
    moved = _prepare(
        denoise_spec,
        [
            *base_args(train_dir, test_dir, tmp_path / "c"),
            *("--max-steps", "2", "--resume-from-checkpoint", str(a / "step_2")),
        ],
    )
    assert moved.run_id == read_run(a)["run_id"]


def _damage_cases(folder: Path) -> dict[str, tuple]:
    def flip(name: str) -> None:
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / name).write_bytes(bytes(data))

    def edit_step() -> None:
        state = json.loads((folder / STATE_FILE).read_text())
        (folder / STATE_FILE).write_text(json.dumps({**state, "batch": 0}))

    def truncate(name: str) -> None:
        (folder / name).write_bytes((folder / name).read_bytes()[:10])

    return {
        "flipped weights": (lambda: flip("model.safetensors"), "model.safetensors does not match"),
        "edited state": (edit_step, "trainer_state.json does not match its checksum"),
        "truncated optimizer": (lambda: truncate("optimizer.bin"), "optimizer.bin does not match"),
        "no random state": (
            lambda: (folder / "random_states_0.pkl").unlink(),
            "lacks random_states_0.pkl",
        ),
        "no checksums": (lambda: (folder / CHECKSUM_FILE).unlink(), f"lacks {CHECKSUM_FILE}"),
    }


@pytest.mark.parametrize(
    "case",
    ["flipped weights", "edited state", "truncated optimizer", "no random state", "no checksums"],
)
def test_damaged_checkpoints_are_refused(denoise_spec, image_dirs, tmp_path, case) -> None:
    train_dir, test_dir = image_dirs
    args = [*base_args(train_dir, test_dir, tmp_path), "--max-steps", "1"]
    train(denoise_spec, args)
    folder = tmp_path / "step_1"
    verify_checkpoint(folder)  # intact
    damage, message = _damage_cases(folder)[case]
    damage()
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(folder)
    with pytest.raises(InputError, match=message):  # the recipe's one-line error
        run_recipe(denoise_spec, [*args, "--resume-from-checkpoint", "latest"])


def test_a_step_edited_in_an_old_checkpoint_is_refused(tmp_path) -> None:
    folder = tmp_path / "step_4"
    folder.mkdir()
    (folder / "random_states_0.pkl").write_bytes(b"")
    (folder / STATE_FILE).write_text(json.dumps({"step": 2, "epoch": 0, "batch": 2}))
    with pytest.raises(CheckpointError, match="says step 2 but the folder is step_4"):
        verify_checkpoint(folder)
    (folder / STATE_FILE).write_text(json.dumps({"step": 4, "epoch": 0}))
    with pytest.raises(CheckpointError, match=r"lacks integer \['batch'\]"):
        verify_checkpoint(folder)


def _make_legacy(folder: Path) -> None:
    """Turn a run folder into the layout of before run ids: no run.json, config.yaml, checksums."""
    for name in (RUN_FILE, CONFIG_FILE):
        (folder / name).unlink()
    for _, step in list_checkpoints(folder):
        (step / CHECKSUM_FILE).unlink(missing_ok=True)
        state = json.loads((step / STATE_FILE).read_text())
        old = {k: state[k] for k in ("step", "epoch", "batch", "model", "task")}
        (step / STATE_FILE).write_text(json.dumps(old, indent=2))


def test_a_checkpoint_from_before_run_ids_resumes_bit_exactly(
    denoise_spec, image_dirs, tmp_path, capsys
) -> None:
    train_dir, test_dir = image_dirs
    extra = ["--ema-decay", "0.9", "--grad-clip", "1", "--checkpointing-steps", "2"]
    straight = train(denoise_spec, [*base_args(train_dir, test_dir, tmp_path / "a"), *extra])
    out = tmp_path / "b"
    args = [*base_args(train_dir, test_dir, out), *extra]
    train(denoise_spec, args, stop_at=2)
    _make_legacy(out)
    capsys.readouterr()
    resumed = train(denoise_spec, [*args, "--resume-from-checkpoint", "latest"])
    notices = [line for line in capsys.readouterr().out.splitlines() if "predates" in line]
    assert len(notices) == 1 and "step_2 predates run ids and checksums" in notices[0]
    assert resumed.progress.step == 4
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # from now on the run has an id, and its new checkpoint carries it with checksums
    assert read_run(out)["run_id"] == resumed.run_id
    assert verify_checkpoint(out / "step_4")["run_id"] == resumed.run_id
    # an old checkpoint of another model is still refused by what it recorded
    _make_legacy(out)
    with pytest.raises(ValueError, match=r"model_overrides \{\} -> \{'dims'"):
        _prepare(
            denoise_spec,
            [*args, "--resume-from-checkpoint", "latest", "--model-overrides", "dims=[8, 16]"],
        )


def test_config_yaml_reproduces_the_settings(denoise_spec, image_dirs, tmp_path) -> None:
    train_dir, test_dir = image_dirs
    args = [*base_args(train_dir, test_dir, tmp_path), "--max-steps", "1", "--sigma", "15"]
    run = train(denoise_spec, [*args, "--model-overrides", "dims=[8, 16]"])
    again = parse_config(denoise_spec, ["--config", str(tmp_path / CONFIG_FILE)])
    expected = dataclasses.replace(
        run.cfg, config=str(tmp_path / CONFIG_FILE), mixed_precision="no"
    )
    assert again == expected
    assert again.level == [15.0] and again.model_overrides == {"dims": [8, 16]}


def test_output_dir_that_cannot_hold_a_run(denoise_spec, image_dirs, tmp_path) -> None:
    train_dir, test_dir = image_dirs
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(InputError, match=r"--output-dir .*file is a file"):
        run_recipe(denoise_spec, base_args(train_dir, test_dir, file))
    with pytest.raises(InputError, match=r"--output-dir .* cannot be written"):
        run_recipe(denoise_spec, base_args(train_dir, test_dir, file / "sub"))


def test_a_truncated_file_of_an_old_checkpoint_is_one_error(
    denoise_spec, image_dirs, tmp_path
) -> None:
    train_dir, test_dir = image_dirs
    args = [*base_args(train_dir, test_dir, tmp_path), "--max-steps", "1"]
    train(denoise_spec, args)
    _make_legacy(tmp_path)  # no checksums: the damage shows only when loading
    optimizer = tmp_path / "step_1" / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="step_1 cannot be loaded"):
        _prepare(denoise_spec, [*args, "--resume-from-checkpoint", "latest"])
