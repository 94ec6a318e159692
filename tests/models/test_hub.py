"""save_pretrained / from_pretrained, and every way a checkpoint can be wrong."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from treeattn.models import (
    CheckpointError,
    HiIRColumnar,
    HiIRUNet,
    create_model,
    from_pretrained,
    save_pretrained,
)
from treeattn.models.checkpoint import CONFIG_NAME, FORMAT, FORMAT_VERSION, WEIGHTS_NAME


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("hiir_sr_tiny_x2", dim=8, depths=(1,), upsampler_dim=8).eval()
    save_pretrained(model, tmp_path)
    return model, tmp_path


def test_files_and_config_record(saved):
    model, path = saved
    assert sorted(p.name for p in path.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    record = json.loads((path / CONFIG_NAME).read_text())
    assert record["format"] == FORMAT and record["format_version"] == FORMAT_VERSION
    assert record["name"] == "hiir_sr_tiny_x2" and record["architecture"] == "columnar"
    assert record["config"]["dim"] == 8 and record["config"]["patch_sizes"] == [8, 32]
    assert set(load_file(str(path / WEIGHTS_NAME))) == set(model.state_dict())


def test_round_trip_keeps_overrides_and_name(saved):
    model, path = saved
    loaded = HiIRColumnar.from_pretrained(path)
    assert loaded.meta.name == "hiir_sr_tiny_x2" and loaded.config == model.config
    assert not loaded.training
    x = torch.rand(1, 3, 12, 9)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_class_method_checks_the_class(saved):
    _, path = saved
    with pytest.raises(TypeError, match="not a HiIRUNet"):
        HiIRUNet.from_pretrained(path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        from_pretrained(tmp_path / "nope")


def test_missing_config(saved):
    _, path = saved
    (path / CONFIG_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        from_pretrained(path)


def test_missing_weights(saved):
    _, path = saved
    (path / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing"):
        from_pretrained(path)


def test_not_a_treeattn_config(saved):
    _, path = saved
    (path / CONFIG_NAME).write_text(json.dumps({"model_type": "swinir", "upscale": 2}))
    with pytest.raises(CheckpointError, match="not a treeattn checkpoint"):
        from_pretrained(path)


def test_config_not_json(saved):
    _, path = saved
    (path / CONFIG_NAME).write_text("{ truncated")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        from_pretrained(path)


def test_newer_format_version(saved):
    _, path = saved
    record = json.loads((path / CONFIG_NAME).read_text())
    record["format_version"] = FORMAT_VERSION + 1
    (path / CONFIG_NAME).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="upgrade treeattn"):
        from_pretrained(path)


def test_invalid_config_values(saved):
    _, path = saved
    record = json.loads((path / CONFIG_NAME).read_text())
    record["config"]["num_heads"] = 3
    (path / CONFIG_NAME).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=r"invalid config.*num_heads"):
        from_pretrained(path)


def test_config_entry_not_an_object(saved):
    _, path = saved
    record = json.loads((path / CONFIG_NAME).read_text())
    record["config"] = ["dim", 8]
    (path / CONFIG_NAME).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="must be an object"):
        from_pretrained(path)


def test_load_as_bfloat16(saved):
    _, path = saved
    model = from_pretrained(path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


def test_truncated_weights(saved):
    _, path = saved
    data = (path / WEIGHTS_NAME).read_bytes()
    (path / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        from_pretrained(path)


def test_weights_of_another_width(saved):
    _, path = saved
    record = json.loads((path / CONFIG_NAME).read_text())
    record["config"]["dim"] = 16
    (path / CONFIG_NAME).write_text(json.dumps(record))
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatches \['body_end.0.bias: file \(2,\) vs model \(4,\)'.* more",
    ):
        from_pretrained(path)


def test_missing_and_unexpected_keys(saved):
    _, path = saved
    weights = load_file(str(path / WEIGHTS_NAME))
    weights.pop("shallow.bias")
    weights["extra.weight"] = torch.zeros(2)
    save_file(weights, str(path / WEIGHTS_NAME))
    with pytest.raises(CheckpointError) as info:
        from_pretrained(path)
    message = str(info.value)
    assert "1 missing keys ['shallow.bias']" in message
    assert "1 unexpected keys ['extra.weight']" in message
    assert isinstance(info.value, ValueError)


def test_save_rejects_foreign_modules(tmp_path):
    with pytest.raises(TypeError, match="needs a treeattn model"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path)
