"""Config validation and the dict round trip used by checkpoints."""

from __future__ import annotations

import dataclasses
import json

import pytest

from treeattn.layers import HiIRLayer, SwinLayer, init_weights
from treeattn.models import ColumnarConfig, UNetConfig, list_models, model_config
from treeattn.models.configs import config_from_dict, config_to_dict

_UNET_SMALL = {
    "dims": (4, 8),
    "depths": (1, 1),
    "decoder_depths": (1,),
    "num_heads": (1, 1),
    "patch_sizes": ((2, 4), (2, 4)),
}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dim": 30, "num_heads": 4}, "divisible by num_heads"),
        ({"variant": "v4"}, "3-level tree"),
        ({"variant": "v9"}, "variant='v9' is not known"),
        ({"init": "zero_ln"}, "norm='post'"),
        ({"stage_end": "conv5"}, "stage_end='conv5'"),
        ({"ffn_type": "moe"}, "ffn_type='moe'"),
        ({"scale": 5}, "scale=5"),
        ({"in_chans": 1, "out_chans": 1}, "img_mean"),
        ({"global_residual": True}, "global_residual needs scale=1"),
        ({"patch_sizes": (16, 24)}, "larger multiple"),
        ({"window_size": 4}, "no effect with layer_type='hiir'"),
        ({"layer_type": "swin", "variant": "v1"}, "no effect with layer_type='swin'"),
        ({"layer_type": "vit"}, "layer_type='vit'"),
        ({"drop_path": 1.0}, "drop_path"),
        ({"ffn_ratio": 0.0}, "ffn_ratio"),
        ({"init_std": -0.02}, "init_std"),
    ],
)
def test_columnar_config_rejects_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        ColumnarConfig(**settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dims": (4, 8, 16)}, "dims has 3"),
        ({"decoder_depths": (1, 1)}, "decoder_depths needs 1"),
        ({"dims": (4, 12)}, "must double"),
        ({"in_chans": 6, "out_chans": 3}, "residual='input' needs in_chans == out_chans"),
        ({"in_chans": 5, "out_chans": 3, "residual": "view_mean"}, "multiple of"),
        ({"residual": "mean"}, "residual='mean'"),
        ({"num_heads": (3, 1)}, "divisible"),
    ],
)
def test_unet_config_rejects_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        UNetConfig(**{**_UNET_SMALL, **settings})


def test_swin_unet_ignores_no_tree_setting_but_needs_none():
    config = UNetConfig(
        **{**_UNET_SMALL, "patch_sizes": UNetConfig().patch_sizes}, layer_type="swin"
    )
    assert config.tree(0) == ()
    with pytest.raises(ValueError, match="patch_sizes"):
        UNetConfig(**_UNET_SMALL, layer_type="swin")


@pytest.mark.parametrize("name", list_models())
def test_config_survives_json(name):
    config = model_config(name)
    text = json.dumps(config_to_dict(config))
    assert config_from_dict(type(config), json.loads(text)) == config


def test_config_from_dict_rejects_unknown_keys():
    values = {**config_to_dict(ColumnarConfig()), "widht": 3}
    with pytest.raises(ValueError, match=r"unknown ColumnarConfig settings \['widht'\]"):
        config_from_dict(ColumnarConfig, values)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ColumnarConfig().dim = 3


def _message(build) -> str:
    with pytest.raises(ValueError) as error:
        build()
    return str(error.value)


@pytest.mark.parametrize(
    ("field", "value", "layer"),
    [
        ("drop_path", 1.0, lambda v: HiIRLayer(8, 2, (2, 8), drop_path=v)),
        ("drop_path", -0.1, lambda v: HiIRLayer(8, 2, (2, 8), drop_path=v)),
        ("ffn_ratio", 0.0, lambda v: HiIRLayer(8, 2, (2, 8), ffn_ratio=v)),
        ("window_size", 0, lambda v: SwinLayer(8, 2, window_size=v)),
    ],
)
def test_config_and_layer_apply_one_rule(field, value, layer):
    """A layer's range rule is written once: the config applies the layer's own check when it is
    created, so both refuse the same value with the same message."""
    swin = {"layer_type": "swin", "patch_sizes": ColumnarConfig().patch_sizes}
    settings = {field: value, **(swin if field == "window_size" else {})}
    assert _message(lambda: ColumnarConfig(**settings)) == _message(lambda: layer(value))


def test_config_and_init_apply_one_std_rule():
    assert _message(lambda: ColumnarConfig(init_std=0.0)) == "init_std=0.0 must be > 0.0"
    assert _message(lambda: init_weights(HiIRLayer(8, 2, (2, 8)), std=0.0)) == (
        "std=0.0 must be > 0.0"
    )
