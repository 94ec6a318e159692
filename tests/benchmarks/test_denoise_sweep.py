"""The denoiser sweep and the Urban100 split: arms are valid runs, the split is fixed."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch
from bench_scripts import ROOT, load_benchmark
from PIL import Image

from treeattn.engine import parse_config

sweep = load_benchmark("denoise_sweep")
urban_split = load_benchmark("urban_split")
SPEC = runpy.run_path(str(ROOT / "recipes" / "denoise.py"), run_name="recipe")["SPEC"]


@pytest.mark.parametrize("arm", sorted(sweep.ARMS))
def test_every_arm_is_a_valid_run_of_the_recipe(arm, tmp_path) -> None:
    cmd = sweep.command(arm, tmp_path)
    assert cmd[:3] == ["accelerate", "launch", str(ROOT / "recipes" / "denoise.py")]
    cfg = parse_config(SPEC, cmd[3:])  # every flag known, every value in range
    _, steps, quiet_seconds = sweep.ARMS[arm]
    assert cfg.max_steps == steps and cfg.level == [0.0, 50.0] and cfg.test_level == [25.0]
    assert cfg.output_dir == str(tmp_path / arm)
    assert 400 < quiet_seconds < 600  # arms are sized for about the same wall time


def test_record_reads_a_run_and_names_the_command_relatively(tmp_path) -> None:
    run = tmp_path / "tiny"
    run.mkdir()
    header = "step,time_s,Set12/psnr,Set12/ssim,Set12/images,"
    header += "Urban100_val/psnr,Urban100_val/ssim,Urban100_val/images"
    rows = ["10,5.0,25.0,0.7,12,22.0,0.6,10", "20,9.5,26.5,0.75,12,23.25,0.65,10"]
    (run / "val.csv").write_text("\n".join([header, *rows]) + "\n")
    logs = [{"kind": "train", "step": s, "time_s": t} for s, t in ((10, 4.0), (20, 9.0))]
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in logs) + "\n")
    row = sweep.record("tiny", tmp_path)
    assert (row["set12_psnr"], row["urban_val_psnr"], row["train_seconds_recorded"]) == (
        26.5,
        23.25,
        9.0,
    )
    assert [point["step"] for point in row["curve"]] == [10, 20]
    assert row["command"].startswith("accelerate launch recipes/denoise.py ")
    assert str(ROOT) not in row["command"]


def _fake_urban(folder: Path, names, size=(300, 280)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        pixels = torch.arange(size[0] * size[1]).reshape(size[1], size[0]) * (i + 1) % 251
        Image.fromarray(pixels.to(torch.uint8).numpy()).save(folder / name)


def test_urban_split_is_disjoint_and_crops_the_centre(tmp_path) -> None:
    assert not set(urban_split.REPORT) & set(urban_split.VALIDATION)
    assert len(urban_split.REPORT) == 20 and len(urban_split.VALIDATION) == 10
    source = tmp_path / "Urban100"
    _fake_urban(source, urban_split.REPORT + urban_split.VALIDATION)
    written = urban_split.write_validation(source, tmp_path / "val")
    assert [p.name for p in written] == list(urban_split.VALIDATION)
    with Image.open(source / urban_split.VALIDATION[0]) as image:
        expected = image.crop((22, 12, 278, 268))
        with Image.open(written[0]) as crop:
            assert crop.size == (256, 256) and crop.tobytes() == expected.tobytes()
    report = urban_split.link_report(source, tmp_path / "report")
    assert sorted(p.name for p in report.iterdir()) == list(urban_split.REPORT)


def test_a_longer_report_subset_keeps_clear_of_validation_and_its_own_folder(tmp_path) -> None:
    assert urban_split.report(20) == urban_split.REPORT
    assert urban_split.report(90)[-1] == "img_090.png"
    for bad in (0, 91):
        with pytest.raises(ValueError, match="1 to 90 images"):
            urban_split.report(bad)
    source = tmp_path / "Urban100"
    _fake_urban(source, urban_split.report(4), size=(20, 20))
    folder = urban_split.link_report(source, tmp_path / "report", urban_split.report(4))
    assert sorted(p.name for p in folder.iterdir()) == list(urban_split.report(4))
    urban_split.link_report(source, folder, urban_split.report(4))  # again: nothing to add
    with pytest.raises(ValueError, match="outside this report subset"):
        urban_split.link_report(source, folder, urban_split.report(2))


def test_urban_split_names_a_missing_image_and_a_small_one(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"img_091\.png is missing"):
        urban_split.write_validation(tmp_path, tmp_path / "val")
    with pytest.raises(ValueError, match="smaller than the 256x256 crop"):
        urban_split.centre_crop(Image.new("L", (200, 300)))
