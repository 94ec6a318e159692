"""Hostile checkpoints: flipped bytes, edited configs, foreign files, missing digests or scales."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from treeattn.models import CheckpointError, create_model, from_pretrained, save_pretrained
from treeattn.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME

_TINY_SR = {"dim": 8, "depths": (1,), "num_heads": 2, "upsampler_dim": 4}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("hiir_sr_tiny_x2", **_TINY_SR).eval()
    save_pretrained(model, tmp_path)
    return model, tmp_path


def _edit_config(path, change):
    record = json.loads((path / CONFIG_NAME).read_text())
    change(record)
    (path / CONFIG_NAME).write_text(json.dumps(record))


def test_flipped_byte_in_weights_is_caught(saved):
    _, path = saved
    data = bytearray((path / WEIGHTS_NAME).read_bytes())
    data[-5] ^= 0xFF  # inside the last tensor's data: still a readable safetensors file
    (path / WEIGHTS_NAME).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors .*corrupt or was edited"):
        from_pretrained(path)


@pytest.mark.parametrize(
    "change",
    [
        {"img_mean": None},
        {"patch_sizes": [4, 32]},  # same weight shapes, another model
        {"shift": True},
    ],
)
def test_edited_config_that_keeps_weight_shapes_is_caught(saved, change):
    _, path = saved
    _edit_config(path, lambda record: record["config"].update(change))
    with pytest.raises(CheckpointError, match="was edited after saving"):
        from_pretrained(path)


def test_config_without_digests_is_refused(saved):
    """Every save_pretrained folder records both digests; one without them was not written by it."""
    _, path = saved

    def drop(record):
        del record["config_sha256"], record["weights_sha256"]

    _edit_config(path, drop)
    with pytest.raises(CheckpointError, match="records no config_sha256 or weights_sha256"):
        from_pretrained(path)


def test_residual_rescale_weights_without_their_scale_are_refused(tmp_path):
    """The branch scale of a residual_rescale model is saved with its weights; a weights file
    without it does not fit the model (it would run at another scale)."""
    torch.manual_seed(0)
    model = create_model("hiir_sr_tiny_x2", init="residual_rescale", **_TINY_SR).eval()
    save_pretrained(model, tmp_path)
    weights = load_file(str(tmp_path / WEIGHTS_NAME))
    assert any(k.endswith(".scale") for k in weights)
    save_file({k: v for k, v in weights.items() if "scale" not in k}, str(tmp_path / WEIGHTS_NAME))
    with pytest.raises(CheckpointError, match=r"missing keys \[.*\.scale'"):
        from_pretrained(tmp_path)


def test_save_refuses_to_overwrite_a_foreign_config(tmp_path):
    foreign = json.dumps({"model_type": "bert", "hidden_size": 8})
    (tmp_path / CONFIG_NAME).write_text(foreign)
    model = create_model("hiir_sr_tiny_x2", **_TINY_SR)
    with pytest.raises(FileExistsError, match="not a treeattn config"):
        save_pretrained(model, tmp_path)
    assert (tmp_path / CONFIG_NAME).read_text() == foreign
    assert not (tmp_path / WEIGHTS_NAME).exists()


def test_save_refuses_an_unreadable_config(tmp_path):
    (tmp_path / CONFIG_NAME).write_text("not json")
    with pytest.raises(FileExistsError, match="not a treeattn config"):
        save_pretrained(create_model("hiir_sr_tiny_x2", **_TINY_SR), tmp_path)


def test_save_over_a_treeattn_checkpoint_is_allowed(saved):
    _, path = saved
    other = create_model("hiir_sr_tiny_x2", **{**_TINY_SR, "dim": 4})
    save_pretrained(other, path)
    assert from_pretrained(path).config == other.config


def test_save_into_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        save_pretrained(create_model("hiir_sr_tiny_x2", **_TINY_SR), target)


def test_truncated_weights_is_a_checkpoint_error(saved):
    _, path = saved
    (path / WEIGHTS_NAME).write_bytes((path / WEIGHTS_NAME).read_bytes()[:20])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        from_pretrained(path)


def test_name_of_the_wrong_type_in_config(saved):
    _, path = saved
    _edit_config(path, lambda record: record.update(name=3))
    with pytest.raises(CheckpointError, match='"name" must be a string'):
        from_pretrained(path)


def test_config_value_of_the_wrong_type_is_a_checkpoint_error(saved):
    _, path = saved
    _edit_config(path, lambda record: record["config"].update(shift="no"))
    with pytest.raises(CheckpointError, match="shift='no' must be a bool"):
        from_pretrained(path)
