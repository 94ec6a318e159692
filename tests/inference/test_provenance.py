"""TrainingRecord: saved with a model, read back, printed by `treeattn info DIR`."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from inference_testlib import tiny_denoiser

from treeattn.cli import main
from treeattn.models import CheckpointError, InitRecord, TrainingRecord, from_pretrained
from treeattn.models.checkpoint import CONFIG_NAME

BLIND = TrainingRecord(
    task="denoise",
    in_chans=1,
    out_chans=1,
    degradation="awgn",
    level_name="sigma",
    level=(0, 50),
    data="clean images in DFWB",
    steps=1200,
)


def _saved(tmp_path, record):
    model = tiny_denoiser()
    model.provenance = record
    model.save_pretrained(tmp_path)
    return tmp_path


def test_record_round_trips_through_save_and_load(tmp_path):
    loaded = from_pretrained(_saved(tmp_path, BLIND))
    assert loaded.provenance == BLIND and loaded.provenance.level == (0.0, 50.0)
    saved = json.loads((tmp_path / CONFIG_NAME).read_text())["training"]
    assert saved["level"] == [0.0, 50.0] and saved["task"] == "denoise"


def test_older_config_without_a_record_still_loads(tmp_path):
    assert from_pretrained(_saved(tmp_path, None)).provenance is None
    assert "training" not in json.loads((tmp_path / CONFIG_NAME).read_text())


def test_invalid_record_is_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path, BLIND)
    config = json.loads((path / CONFIG_NAME).read_text())
    config["training"]["level"] = [50, 0]
    (path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r'invalid "training" record: level'):
        from_pretrained(path)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"task": "", "in_chans": 1, "out_chans": 1}, "task=''"),
        ({"task": "sr", "in_chans": 3, "out_chans": 3, "scale": 0}, "scale=0"),
        ({"task": "jpeg", "in_chans": 1, "out_chans": 1, "level": [10]}, "needs a level_name"),
        ({"task": "jpeg", "in_chans": 1, "out_chans": 1, "colour": 1}, r"unknown .* \['colour'\]"),
        ({"task": "jpeg"}, "incomplete training record"),
    ],
)
def test_record_checks_its_values(values, match):
    with pytest.raises(ValueError, match=match):
        TrainingRecord.from_dict(values)


def test_level_text():
    assert BLIND.level_text() == "sigma 0–50 (blind)"
    jpeg = TrainingRecord(task="jpeg", in_chans=1, out_chans=1, level_name="quality", level=(10,))
    assert jpeg.level_text() == "quality 10"
    assert TrainingRecord(task="deblur", in_chans=3, out_chans=3).level_text() == ""


def test_info_on_a_saved_folder_prints_the_record(tmp_path, capsys):
    assert main(["info", str(_saved(tmp_path, BLIND))]) == 0
    out = capsys.readouterr().out
    assert re.search(r"trained for\s+denoise", out)
    assert "awgn, sigma 0–50 (blind)" in out
    assert "clean images in DFWB" in out and "1,200" in out and "parameters" in out


def test_info_on_a_folder_saved_without_a_record(tmp_path, capsys):
    assert main(["info", str(_saved(tmp_path, None)), "--size", "16", "16"]) == 0
    out = capsys.readouterr().out
    assert "not recorded" in out and "MACs" in out


FINE_TUNED = dataclasses.replace(
    BLIND,
    data="clean images in microscope/",
    steps=200,
    init_from=InitRecord(source="hiir_dn_gray_cpu", kind="shipped", model="hiir_unet_tiny_dn_gray",
                         weights_sha256="ab" * 32, training=BLIND),
)  # fmt: skip


def test_a_chain_of_records_round_trips(tmp_path):
    grandchild = dataclasses.replace(
        FINE_TUNED, init_from=InitRecord(source="run_a", kind="run", model="m", training=FINE_TUNED)
    )
    loaded = from_pretrained(_saved(tmp_path, grandchild)).provenance
    assert loaded == grandchild
    assert loaded.init_from.training.init_from.training == BLIND
    saved = json.loads((tmp_path / CONFIG_NAME).read_text())["training"]
    assert saved["init_from"]["training"]["init_from"]["source"] == "hiir_dn_gray_cpu"
    assert "init_from" not in saved["init_from"]["training"]["init_from"]["training"]


@pytest.mark.parametrize(
    ("init_from", "match"),
    [
        ({"source": "x", "kind": "url", "model": "m"}, "kind='url' must be one of"),
        ({"source": "", "kind": "run", "model": "m"}, "source='' must be"),
        ({"source": "x", "kind": "run"}, "incomplete init_from record"),
        ({"source": "x", "kind": "run", "model": "m", "training": {"task": "x"}},
         "incomplete training record"),
    ],
)  # fmt: skip
def test_an_invalid_init_from_record_is_a_checkpoint_error(tmp_path, init_from, match):
    path = _saved(tmp_path, BLIND)
    config = json.loads((path / CONFIG_NAME).read_text())
    config["training"]["init_from"] = init_from
    (path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f'invalid "training" record: .*{match}'):
        from_pretrained(path)


def test_info_prints_the_chain(tmp_path, capsys):
    assert main(["info", str(_saved(tmp_path, FINE_TUNED))]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\ninitialised from +hiir_dn_gray_cpu \(shipped model hiir_unet_tiny_", out)
    assert re.search(r"\n  trained on +clean images in DFWB\n  steps +1,200\n", out)
    assert re.search(r"\ntrained on +clean images in microscope/\nsteps +200\n", out)
