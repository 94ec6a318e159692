"""Settings: task defaults < preset < YAML < --smoke < flags; unknown keys and presets raise."""

from __future__ import annotations

import pytest
from engine_testlib import load_recipe

from treeattn.engine import LevelSpec, parse_config
from treeattn.engine.config import build_parser, parse_overrides
from treeattn.engine.settings import TrainConfig, check_settings, task_flags


def test_task_defaults_fill_the_config(denoise_spec) -> None:
    cfg = parse_config(denoise_spec, [])
    assert (cfg.model, cfg.channels, cfg.level) == ("hiir_unet_tiny", 1, [25.0])
    assert cfg.output_dir == "outputs/denoise"


def test_preset_then_flags_win(denoise_spec) -> None:
    paper = parse_config(denoise_spec, ["--preset", "paper"])
    assert (paper.model, paper.patch_size, paper.warmup_steps) == ("hiir_unet_dn_color", 128, 50000)
    assert paper.max_minutes == 0  # the laptop time budget does not apply to paper runs
    mixed = parse_config(denoise_spec, ["--preset", "paper", "--patch-size", "64"])
    assert (mixed.patch_size, mixed.model) == (64, "hiir_unet_dn_color")


def test_both_flag_spellings(denoise_spec) -> None:
    a = parse_config(denoise_spec, ["--train-dir", "x", "--batch_size", "3"])
    b = parse_config(denoise_spec, ["--train_dir", "x", "--batch-size", "3"])
    assert (a.train_dir, a.batch_size) == (b.train_dir, b.batch_size) == ("x", 3)


def test_yaml_sits_between_preset_and_flags(denoise_spec, tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("preset: paper\nsigma: 50\nbatch-size: 3\nmodel_overrides: {dims: [8, 16]}\n")
    cfg = parse_config(denoise_spec, ["--config", str(path), "--batch-size", "5"])
    assert cfg.level == [50.0]
    assert cfg.patch_size == 128  # from the preset named in the file
    assert cfg.batch_size == 5  # the flag beats the file
    assert cfg.model_overrides == {"dims": [8, 16]}


def test_unknown_yaml_key_is_an_error(denoise_spec, tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("batch_size: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rate'\]"):
        parse_config(denoise_spec, ["--config", str(path)])


def test_yaml_values_are_type_checked(denoise_spec, tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("batch_size: '6'\nsigma: [0, 50]\n")
    cfg = parse_config(denoise_spec, ["--config", str(path)])
    assert (cfg.batch_size, cfg.level) == (6, [0.0, 50.0])
    path.write_text("lr: fast\n")
    with pytest.raises(ValueError, match="lr: 'fast' is not a valid float"):
        parse_config(denoise_spec, ["--config", str(path)])


def test_missing_yaml_and_unknown_preset(denoise_spec, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_config(denoise_spec, ["--config", str(tmp_path / "nope.yaml")])
    with pytest.raises(ValueError, match="unknown --preset 'fast'"):
        parse_config(denoise_spec, ["--preset", "fast"])


def test_smoke_is_below_explicit_flags(denoise_spec) -> None:
    smoke = parse_config(denoise_spec, ["--smoke"])
    assert smoke.max_steps == denoise_spec.smoke["max_steps"]
    assert parse_config(denoise_spec, ["--smoke", "--max-steps", "3"]).max_steps == 3


def test_level_flags_follow_the_task(denoise_spec) -> None:
    assert parse_config(denoise_spec, ["--sigma", "0", "50"]).level == [0.0, 50.0]
    assert parse_config(denoise_spec, ["--test-sigma", "15"]).test_level == [15.0]
    jpeg = load_recipe("jpeg")
    assert parse_config(jpeg, ["--quality", "20"]).level == [20.0]
    with pytest.raises(SystemExit):  # argparse: --sigma is not a JPEG flag
        parse_config(jpeg, ["--sigma", "25"])
    assert "--dual-pixel" not in build_parser(denoise_spec).format_help()
    assert "--dual-pixel" in build_parser(load_recipe("defocus")).format_help()


def test_invalid_values_name_the_flag(denoise_spec) -> None:
    with pytest.raises(ValueError, match="--batch-size must be >= 1"):
        parse_config(denoise_spec, ["--batch-size", "0"])
    with pytest.raises(ValueError, match="--warmup-steps 10 must be between 0 and --max-steps 5"):
        parse_config(denoise_spec, ["--max-steps", "5", "--warmup-steps", "10"])
    with pytest.raises(
        ValueError, match="--tile-overlap 64 must be >= 0 and smaller than --tile 64"
    ):
        parse_config(denoise_spec, ["--tile", "64", "--tile-overlap", "64"])
    with pytest.raises(ValueError, match="LOW HIGH"):
        parse_config(denoise_spec, ["--sigma", "50", "0"])


def test_model_overrides_are_typed() -> None:
    parsed = parse_overrides(["dims=[8, 16]", "drop_path=0.1", "variant=v1", "shift=true"])
    assert parsed == {"dims": [8, 16], "drop_path": 0.1, "variant": "v1", "shift": True}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["dims"])


def test_folders_of_the_other_data_kind_are_rejected(denoise_spec) -> None:
    with pytest.raises(ValueError, match=r"does not read --train-lq.*use --train-dir"):
        parse_config(denoise_spec, ["--train-lq", "a", "--train-gt", "b"])
    deblur = load_recipe("deblur")
    with pytest.raises(ValueError, match="does not read --test-dir"):
        parse_config(deblur, ["--test-dir", "x"])


def test_precision_defaults_to_the_launcher(denoise_spec) -> None:
    assert parse_config(denoise_spec, []).mixed_precision is None
    assert parse_config(denoise_spec, ["--mixed-precision", "bf16"]).mixed_precision == "bf16"


def test_one_mapping_names_the_flags_of_a_task(denoise_spec, tmp_path) -> None:
    flags = task_flags(denoise_spec)
    assert (flags["level"].option, flags["test_level"].option) == ("--sigma", "--test-sigma")
    assert flags["patch_size"].spellings == ["--patch-size", "--patch_size"]
    assert "dual_pixel" not in flags
    assert task_flags(load_recipe("jpeg"))["test_level"].option == "--test-quality"
    assert not {"level", "test_level"} & set(task_flags(load_recipe("deblur")))
    # the parser and the YAML keys follow it: both spellings, as for every other flag
    assert parse_config(denoise_spec, ["--test_sigma", "15"]).test_level == [15.0]
    path = tmp_path / "run.yaml"
    path.write_text("test-sigma: 20\n")
    assert parse_config(denoise_spec, ["--config", str(path)]).test_level == [20.0]


def test_a_level_becomes_the_degradation_keywords() -> None:
    level = LevelSpec(flag="sigma", help="noise", param="sigma")
    assert level.degradation_kwargs([25.0]) == {"sigma": 25.0}
    assert level.degradation_kwargs([0.0, 50.0]) == {"sigma_range": (0.0, 50.0)}
    assert level.degradation_kwargs([]) == {}


def test_no_tiling_is_none_however_it_is_spelled(denoise_spec, tmp_path) -> None:
    assert parse_config(denoise_spec, []).tile is None
    assert parse_config(denoise_spec, ["--tile", "0"]).tile is None
    old_settings = tmp_path / "config.yaml"  # what runs written before tile=None hold
    old_settings.write_text("tile: 0\ntile_overlap: 32\n")
    assert parse_config(denoise_spec, ["--config", str(old_settings)]).tile is None
    assert parse_config(denoise_spec, ["--tile", "48"]).tile == 48
    with pytest.raises(ValueError, match="--tile -8 must be a positive number of pixels"):
        parse_config(denoise_spec, ["--tile", "-8"])


def test_settings_are_checked_without_the_front_end() -> None:
    assert check_settings(TrainConfig()) == TrainConfig()
    with pytest.raises(ValueError, match="--tile-overlap 8 must be >= 0 and smaller than --tile 8"):
        check_settings(TrainConfig(tile=8, tile_overlap=8))
    with pytest.raises(ValueError, match="--level must be a finite number"):
        check_settings(TrainConfig(level=[float("nan")]))


@pytest.mark.parametrize("module", ["treeattn.engine.settings", "treeattn.engine.config"])
def test_validate_is_a_deprecated_name_of_check_settings(module) -> None:
    import importlib

    with pytest.warns(DeprecationWarning, match=r"treeattn\.engine\.settings\.check_settings"):
        assert importlib.import_module(module).validate is check_settings
