"""Paired tasks on user folders: flags, dual-pixel views, and the paired report."""

from __future__ import annotations

import json

import pytest
import torch
from engine_testlib import TinyNet, load_recipe

from treeattn.data.io import write_image
from treeattn.engine import InputError, fit, parse_config, prepare_run, run_recipe
from treeattn.engine.report import final_report
from treeattn.engine.synthetic import make_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """User-style folders: train/test, single view (motion blur) and dual-pixel views."""
    root = tmp_path_factory.mktemp("pairs")
    for split, count in (("train", 4), ("test", 3)):
        for i in range(count):
            write_image(root / "clean" / split / f"im{i}.png", torch.rand(3, 24, 24))
    made = {}
    for kind in ("motion_blur", "dual_pixel"):
        for split in ("train", "test"):
            made[kind, split] = make_pairs(
                kind, root / "clean" / split, root / kind / split, channels=3, seed=0
            )
    return made


def _flags(pairs, kind, out):
    (train_lq, train_gt), (test_lq, test_gt) = pairs[kind, "train"], pairs[kind, "test"]
    return [
        "--train-lq", *map(str, train_lq), "--train-gt", str(train_gt),
        "--test-lq", *map(str, test_lq), "--test-gt", str(test_gt),
        "--output_dir", str(out), "--patch-size", "16", "--batch-size", "2", "--max-steps", "2",
        "--warmup-steps", "0", "--save-images", "0", "--no-with-tracking",
    ]  # fmt: skip


@pytest.mark.parametrize(("recipe", "kind", "extra"), [
    ("deblur", "motion_blur", []), ("defocus", "dual_pixel", ["--dual-pixel"]),
])  # fmt: skip
def test_user_pairs_train_and_report(pairs, tmp_path, recipe, kind, extra) -> None:
    spec = load_recipe(recipe)
    cfg = parse_config(spec, [*_flags(pairs, kind, tmp_path), *extra])
    views = 2 if extra else 1
    run = prepare_run(spec, cfg, model_fn=lambda: TinyNet(3, in_chans=3 * views))
    item = run.data.train[0]
    assert item["lq"].shape == (3 * views, 16, 16) and item["gt"].shape == (3, 16, 16)
    fit(run)
    means = final_report(run)
    run.accelerator.end_training()
    assert not (tmp_path / "synthetic").exists()  # the user's folders were used
    report = json.loads((tmp_path / "report" / "test.json").read_text())
    assert [row["name"] for row in report["rows"]] == ["im0", "im1", "im2"]
    assert means["test"]["input_psnr"] == pytest.approx(report["mean"]["input_psnr"])
    assert report["protocol"]["name"] == spec.protocol


def test_paired_flag_errors(pairs, tmp_path) -> None:
    deblur, defocus = load_recipe("deblur"), load_recipe("defocus")
    train_lq, _ = pairs["motion_blur", "train"]
    with pytest.raises(InputError, match="--train-lq with --train-gt"):
        run_recipe(deblur, ["--train-lq", str(train_lq[0]), "--output_dir", str(tmp_path)])
    with pytest.raises(InputError, match="needs 2 \\(left right\\)"):
        run_recipe(defocus, [*_flags(pairs, "motion_blur", tmp_path), "--dual-pixel"])
    with pytest.raises(InputError, match="expects 1"):
        run_recipe(defocus, _flags(pairs, "dual_pixel", tmp_path))


def test_paired_data_follows_the_model_scale(tmp_path) -> None:
    from treeattn.engine.data import build_data

    for split in ("train", "test"):
        for i in range(2):
            write_image(tmp_path / "gt" / split / f"im{i}.png", torch.rand(3, 24, 24))
            write_image(tmp_path / "lq" / split / f"im{i}.png", torch.rand(3, 12, 12))
    spec = load_recipe("deblur")
    folders = [f"--{kind}-{side}" for kind in ("train", "test") for side in ("lq", "gt")]
    paths = [tmp_path / side / kind for kind in ("train", "test") for side in ("lq", "gt")]
    flags = [str(x) for pair in zip(folders, paths, strict=True) for x in pair]
    cfg = parse_config(spec, [*flags, "--patch-size", "8", "--output-dir", str(tmp_path / "o")])
    data = build_data(spec, cfg, scale=2)
    item = data.train[0]
    assert item["lq"].shape == (3, 8, 8) and item["gt"].shape == (3, 16, 16)
    test = data.tests[0].dataset[0]
    assert test["lq"].shape == (3, 12, 12) and test["gt"].shape == (3, 24, 24)
    dual = parse_config(load_recipe("defocus"), ["--dual-pixel", "--output-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="--dual-pixel views are as large as the ground truth"):
        build_data(load_recipe("defocus"), dual, scale=2)
