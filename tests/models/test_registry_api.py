"""The registry API: names, overrides, registration, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from treeattn.models import (
    ColumnarConfig,
    HiIRColumnar,
    HiIRUNet,
    UNetConfig,
    build_model,
    create_model,
    list_models,
    model_config,
    register_model,
)

REQUIRED = [
    *(f"hiir_{size}_sr_x{s}" for size in ("b", "l") for s in (2, 3, 4)),
    *(f"hiir_sr_{size}_x{s}" for size in ("tiny", "small") for s in (2, 3, 4)),
    "hiir_unet_dn_color",
    "hiir_unet_dn_gray",
    "hiir_unet_jpeg_color",
    "hiir_unet_jpeg_gray",
    "hiir_unet_deblur",
    "hiir_unet_defocus",
    "hiir_unet_defocus_dp",
    "hiir_unet_demosaic",
    "hiir_unet_weather",
    "hiir_unet_tiny",
    "hiir_unet_small",
    "swin_b_sr_x2",
    "isolated_b_sr_x2",
    "swin_sr_tiny_x2",
    "isolated_sr_tiny_x2",
    "swin_unet_tiny",
    "isolated_unet_tiny",
]


def test_required_variants_are_registered():
    missing = sorted(set(REQUIRED) - set(list_models()))
    assert not missing


def test_list_models_pattern():
    assert list_models("hiir_b_sr_x?") == ["hiir_b_sr_x2", "hiir_b_sr_x3", "hiir_b_sr_x4"]
    assert list_models("no_such_*") == []
    assert list_models() == sorted(list_models())


def test_ablations_are_configuration_of_one_base():
    base = model_config("hiir_b_sr_x2")
    expected = {
        "v1": {"variant": "v1", "stage_end": "conv1"},  # Table 7 ablates the conv1 form
        "v4": {"variant": "v4", "patch_sizes": (16, 64, 128), "stage_end": "conv1"},
        "no_l3": {"ffn_type": "mlp", "stage_end": "conv1"},
        "v2_no_l3": {"variant": "v2", "ffn_type": "mlp", "stage_end": "conv1"},
        "conv1": {"stage_end": "conv1"},
        "linear": {"stage_end": "linear"},
        "cosine": {"attn_type": "cosine"},
        "table_bias": {"pos_bias": "table"},
        "zero_ln": {"norm": "post", "init": "zero_ln"},
    }
    for suffix, change in expected.items():
        assert model_config(f"hiir_b_sr_x2_{suffix}") == dataclasses.replace(base, **change)
    tiny = model_config("hiir_sr_tiny_x2")  # the CPU base changes one setting per suffix
    assert model_config("hiir_sr_tiny_x2_v1") == dataclasses.replace(tiny, variant="v1")
    assert model_config("isolated_b_sr_x2") == dataclasses.replace(base, patch_sizes=(16,))
    swin = model_config("swin_b_sr_x2")
    assert (swin.layer_type, swin.window_size, swin.dim) == ("swin", 8, base.dim)


def test_create_model_picks_the_architecture():
    assert isinstance(create_model("hiir_sr_tiny_x2"), HiIRColumnar)
    assert isinstance(create_model("hiir_unet_tiny"), HiIRUNet)


def test_overrides_change_the_config_and_the_model():
    model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1)
    assert model.config.in_chans == 1 and model.meta.in_chans == 1
    assert model.config.dims == model_config("hiir_unet_tiny").dims
    out = model(torch.rand(2, 1, 17, 12))
    assert out.shape == (2, 1, 17, 12)


def test_unknown_override_lists_valid_keys():
    with pytest.raises(ValueError, match=r"no setting\(s\) \['widht'\].*'dim'"):
        create_model("hiir_sr_tiny_x2", widht=3)


def test_invalid_override_value_raises():
    with pytest.raises(ValueError, match="num_heads"):
        create_model("hiir_sr_tiny_x2", num_heads=5)


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match="hiir_sr_tiny_x2"):
        create_model("hiir_sr_tiny_x5")


def test_register_model_and_duplicates():
    config = ColumnarConfig(dim=8, depths=(1,), num_heads=2, patch_sizes=(2, 4), upsampler_dim=8)
    register_model("test_only_columnar", config)
    try:
        assert model_config("test_only_columnar") is config
        assert create_model("test_only_columnar").meta.name == "test_only_columnar"
        with pytest.raises(ValueError, match="already registered"):
            register_model("test_only_columnar", config)
        with pytest.raises(ValueError, match="already registered"):
            register_model("hiir_b_sr_x2", config)
    finally:
        from treeattn.models import registry

        registry._REGISTRY.pop("test_only_columnar")


def test_register_model_rejects_non_configs():
    with pytest.raises(TypeError, match="not a model config"):
        register_model("test_not_a_config", {"dim": 8})


def test_build_model_from_a_bare_config():
    config = UNetConfig(
        dims=(4, 8),
        depths=(1, 1),
        decoder_depths=(1,),
        num_heads=(1, 1),
        patch_sizes=((2, 4), (2, 4)),
    )
    model = build_model(config)
    assert model.meta.name == "custom" and model.config is config
    with pytest.raises(TypeError, match="needs a UNetConfig"):
        HiIRUNet(ColumnarConfig())


def test_meta_device_build_counts_without_memory():
    model = create_model("hiir_l_sr_x4", device="meta")
    assert all(p.is_meta for p in model.parameters())
