"""The report's PNG curves, drawn from a run log."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from treeattn.engine.curves import read_log, save_curves


def _write_log(folder, records) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _ink(path) -> float:
    """Fraction of pixels that are not white."""
    pixels = np.asarray(Image.open(path).convert("L"))
    return float((pixels < 250).mean())


def test_loss_and_psnr_curves_are_drawn_per_test_set(tmp_path) -> None:
    records = [{"kind": "train", "step": s, "time_s": s, "loss": 1 / s, "lr": 1e-3} for s in (1, 2)]
    records += [
        {"kind": "val", "step": s, "time_s": s, "A/psnr": 20 + s, "A/ssim": 0.5, "B/psnr": 21 + s}
        for s in (1, 2)
    ]
    _write_log(tmp_path, records)
    assert read_log(tmp_path) == records
    written = save_curves(tmp_path, tmp_path / "report")
    assert [p.name for p in written] == ["loss.png", "val_psnr.png"]
    for path in written:
        assert Image.open(path).size == (600, 350)
        assert 0.01 < _ink(path) < 0.5  # axes, labels and lines on a white page


def test_a_log_without_validation_draws_only_the_loss(tmp_path) -> None:
    _write_log(tmp_path, [{"kind": "train", "step": 1, "time_s": 0.1, "loss": 0.5, "lr": 1e-3}])
    assert [p.name for p in save_curves(tmp_path, tmp_path / "out")] == ["loss.png"]


@pytest.mark.parametrize("records", [None, []])
def test_no_log_draws_nothing(tmp_path, records) -> None:
    if records is not None:
        _write_log(tmp_path, records)
    assert read_log(tmp_path) == []
    assert save_curves(tmp_path, tmp_path / "out") == []
