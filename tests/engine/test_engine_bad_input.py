"""Bad input stops the run before any training step, with a message naming problem and fix."""

from __future__ import annotations

import json

import pytest
from engine_testlib import TinyNet, base_args, load_recipe
from safetensors.torch import save_file

from treeattn.engine import InputError, main, run_recipe
from treeattn.engine.checkpoint import STATE_FILE, check_compatible, resolve_checkpoint


def _fails(spec, args, match: str, out) -> None:
    with pytest.raises(InputError, match=match):
        run_recipe(spec, args)
    assert not (out / "train.csv").exists()  # nothing was trained
    assert not list(out.glob("step_*"))


def test_missing_and_empty_folders(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    out = tmp_path / "out"
    missing = [*base_args(tmp_path / "nope", test, out)]
    _fails(denoise_spec, missing, "does not exist", out)
    (tmp_path / "empty").mkdir()
    _fails(denoise_spec, [*base_args(train, tmp_path / "empty", out)], "image", out)


def test_unknown_model_and_bad_patch(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    out = tmp_path / "out"
    _fails(
        denoise_spec,
        [*base_args(train, test, out), "--model", "hiir_unet_tinny"],
        "no model named 'hiir_unet_tinny'.*hiir_unet_tiny",
        out,
    )
    _fails(
        denoise_spec,
        [*base_args(train, test, out), "--model", "hiir_unet_tiny", "--patch-size", "20"],
        r"multiples of 8.*--patch-size \[16, 24\]",
        out,
    )
    _fails(
        denoise_spec, [*base_args(train, test, out), "--model-overrides", "widht=3"], "widht", out
    )


def test_blind_range_needs_test_level(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    out = tmp_path / "out"
    _fails(denoise_spec, [*base_args(train, test, out), "--sigma", "0", "50"], "--test-sigma", out)


def test_batch_larger_than_data(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    out = tmp_path / "out"
    _fails(
        denoise_spec,
        [*base_args(train, test, out), "--batch-size", "7"],
        "fewer than one batch",
        out,
    )


def test_checkpoint_of_another_model(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    out = tmp_path / "out"
    args = [*base_args(train, test, out), "--model", "hiir_unet_tiny", "--max-steps", "1"]
    run_recipe(denoise_spec, [*args, "--model-overrides", "dims=[8, 16, 32, 64]"])
    assert (out / "step_1").is_dir() and (out / "train.csv").is_file()
    with pytest.raises(InputError, match=r"overrides \{'dims': \[8, 16, 32, 64\]\}.*Fix"):
        run_recipe(denoise_spec, [*args, "--resume_from_checkpoint", "latest"])


def test_check_compatible_compares_shapes(tmp_path) -> None:
    folder = tmp_path / "step_3"
    folder.mkdir()
    (folder / STATE_FILE).write_text(json.dumps({"step": 3, "model": {"name": "rgb"}}))
    save_file(TinyNet(3).state_dict(), folder / "model.safetensors")
    check_compatible(folder, TinyNet(3), model_name="rgb")
    with pytest.raises(ValueError, match="3 of another shape"):
        check_compatible(folder, TinyNet(1), model_name="gray")
    assert resolve_checkpoint(str(folder), output_dir=tmp_path) == folder
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        resolve_checkpoint(str(tmp_path / "step_4"), output_dir=tmp_path)


def test_script_entry_prints_only_the_message(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    with pytest.raises(SystemExit, match=r"recipes/denoise.py: error: .*patch-size"):
        main(denoise_spec, [*base_args(train, test, tmp_path), "--patch-size", "12"])


@pytest.mark.parametrize(
    ("recipe", "extra", "match"),
    [
        ("denoise", ["--grad-clip", "-1"], "--grad-clip must be >= 0, got -1"),
        ("denoise", ["--min-lr-ratio", "2"], "--min-lr-ratio must be >= 0 and <= 1, got 2"),
        ("denoise", ["--lr", "nan"], "--lr must be a finite number"),
        ("denoise", ["--betas", "0.9", "1"], "--betas .* must both be in"),
        ("denoise", ["--ema-decay", "1"], r"--ema-decay must be in \[0, 1\)"),
        ("denoise", ["--sigma", "nan"], "--sigma nan is not valid: give a number between 0"),
        ("denoise", ["--sigma", "10", "--test-sigma", "-5"], "--test-sigma -5 is not valid"),
        ("jpeg", ["--quality", "50.5"], "--quality 50.5 is not valid: give a whole number"),
        ("jpeg", ["--quality", "0"], "--quality 0 is not valid: .* between 1 and 100"),
        ("denoise", ["--model-overrides", "dims=[8, 16"], "not valid YAML"),
        ("denoise", ["--overwrite", "--resume-from-checkpoint", "latest"], "only one of them"),
    ],
)
def test_bad_settings_name_the_flag(recipe, extra, match, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    spec = load_recipe(recipe)
    _fails(spec, [*base_args(train, test, tmp_path), *extra], match, tmp_path)


def test_broken_yaml_names_the_file_and_line(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    path = tmp_path / "run.yaml"
    path.write_text("lr: 0.1\nbetas: [0.9, 0.99\nseed: 1\n")
    args = [*base_args(train, test, tmp_path), "--config", str(path)]
    _fails(denoise_spec, args, r"run.yaml is not valid YAML \(line 3\)", tmp_path)


@pytest.mark.parametrize(
    ("recipe", "model", "match"),
    [
        ("denoise", "hiir_sr_tiny_x2", "trains models of scale 1, but --model hiir_sr_tiny_x2 has "
         "scale 2; use a model such as .*hiir_unet_dn_gray"),
        ("sr", "hiir_unet_tiny", "trains models of scale 2 or 3 or 4, but --model hiir_unet_tiny"),
    ],
)  # fmt: skip
def test_a_model_of_another_kind(recipe, model, match, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    spec = load_recipe(recipe)
    _fails(spec, [*base_args(train, test, tmp_path), "--model", model], match, tmp_path)


def test_overrides_of_the_wrong_type_name_the_flag(image_dirs, tmp_path) -> None:
    train, test = image_dirs
    args = [*base_args(train, test, tmp_path), "--model-overrides", "dim=abc", "--channels", "3"]
    _fails(load_recipe("sr"), args, "hiir_sr_tiny_x2 cannot be built with .*'dim': 'abc'", tmp_path)


def test_a_model_of_other_channels(denoise_spec, image_dirs, tmp_path) -> None:
    from treeattn.engine import parse_config, prepare_run

    train, test = image_dirs
    cfg = parse_config(denoise_spec, base_args(train, test, tmp_path))  # gray data
    with pytest.raises(ValueError, match="maps 3 to 3 channels but the data has 1 input"):
        prepare_run(denoise_spec, cfg, model_fn=lambda: TinyNet(3))
