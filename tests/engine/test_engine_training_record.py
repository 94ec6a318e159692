"""What a run records about its training (saved with its final model), and the model's task."""

from __future__ import annotations

import pytest
from engine_testlib import load_recipe

from treeattn.engine.config import parse_config
from treeattn.engine.model import model_for_task, training_record

SMALL = ["--model-overrides", "dims=[4,8,16]", "depths=[1,1,1]", "decoder_depths=[1,1]",
         "num_heads=[1,1,1]", "patch_sizes=[[2,4],[2,4],[2,4]]"]  # fmt: skip


@pytest.mark.parametrize(
    ("recipe", "flags", "expected"),
    [
        ("jpeg", ["--quality", "10", "40"], {"degradation": "jpeg", "level_name": "quality",
                                              "level": (10.0, 40.0), "gray_method": "y"}),
        ("denoise", [], {"degradation": "awgn", "level_name": "sigma", "level": (25.0,)}),
        ("demosaic", [], {"degradation": "bayer", "params": {"pattern": "RGGB"}, "level": ()}),
        ("defocus", ["--dual-pixel"], {"degradation": None, "views": 2, "in_chans": 6}),
    ],
)  # fmt: skip
def test_record_and_task_of_a_run(recipe, flags, expected):
    spec = load_recipe(recipe)
    cfg = parse_config(spec, [*flags, *SMALL])
    model = model_for_task(spec, cfg)
    assert model.meta.task == recipe  # hiir_unet_tiny alone would say "restore"
    record = training_record(spec, cfg, model.meta, steps=7)
    assert record.task == recipe and record.steps == 7
    assert record.out_chans == cfg.channels and "embedded" in record.data
    for key, value in expected.items():
        assert getattr(record, key) == value, key


def test_record_names_the_users_folders(tmp_path):
    spec = load_recipe("denoise")
    cfg = parse_config(spec, ["--train-dir", str(tmp_path), *SMALL])
    record = training_record(spec, cfg, model_for_task(spec, cfg).meta, steps=1)
    assert record.data == f"clean images in {tmp_path}"


def test_build_model_is_a_deprecated_name_of_model_for_task():
    import treeattn.engine.model as engine_model

    with pytest.warns(DeprecationWarning, match=r"treeattn\.engine\.model\.model_for_task"):
        assert engine_model.build_model is model_for_task
