"""Hostile inputs to layers, configs and models: each ends in a clear error or the right answer."""

from __future__ import annotations

import pytest
import torch

from treeattn.layers import HiIRLayer, SwinLayer, TreeAttention, init_weights
from treeattn.layers.residual import Residual
from treeattn.models import ColumnarConfig, UNetConfig, create_model, model_config

_TINY_SR = {"dim": 8, "depths": (1,), "num_heads": 2, "upsampler_dim": 4}


@pytest.fixture(scope="module")
def layer():
    torch.manual_seed(0)
    return HiIRLayer(16, 2, (4, 8)).eval()


@pytest.fixture(scope="module")
def sr_model():
    torch.manual_seed(0)
    return create_model("hiir_sr_tiny_x2", **_TINY_SR).eval()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_layer_other_float_dtype_is_computed_in_fp32_and_returned_in_its_own(layer, dtype):
    x = torch.rand(1, 16, 9, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = layer(x.to(dtype))
        expected = layer(x.to(dtype).float()).to(dtype)  # the rule: compute in fp32, cast back
    assert out.dtype == dtype
    assert torch.equal(out, expected)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_layer_integer_input_is_refused(layer, dtype):
    with pytest.raises(TypeError, match=r"floating-point input.*x\.float"):
        layer(torch.ones(1, 16, 4, 4, dtype=dtype))


def test_layer_zero_dim_is_a_value_error():
    with pytest.raises(ValueError, match="dim=0 must be >= 1"):
        HiIRLayer(0, 1)


def test_layer_zero_heads_is_a_value_error():
    with pytest.raises(ValueError, match="num_heads=0"):
        HiIRLayer(16, 0)


@pytest.mark.parametrize("flag", ["no", "False", 0, 1, None])
def test_layer_shift_must_be_a_real_bool(flag):
    with pytest.raises(TypeError, match=r"shift=.* must be a bool"):
        HiIRLayer(16, 2, (4, 8), shift=flag)


def test_swin_layer_shift_must_be_a_real_bool():
    with pytest.raises(TypeError, match="shift="):
        SwinLayer(16, 2, 4, shift="yes")


def test_layer_float_dim_is_a_type_error():
    with pytest.raises(TypeError, match=r"dim=16\.0 must be an int"):
        HiIRLayer(16.0, 2)


def test_level_is_refused_by_variants_that_ignore_it():
    with pytest.raises(ValueError, match="level=1 is only read by variant"):
        HiIRLayer(16, 2, (4, 8), variant="v3", level=1)
    assert HiIRLayer(16, 2, (4, 8), variant="v1", level=1) is not None


def test_unknown_names_suggest_the_close_one():
    with pytest.raises(ValueError, match="did you mean 'cosine'"):
        TreeAttention(16, 2, (4, 8), attn_type="cosin")


def test_empty_batch_to_layer_is_named(layer):
    with pytest.raises(ValueError, match="empty input"):
        layer(torch.rand(0, 16, 4, 4))


def test_layer_zero_ln_needs_post_norm():
    with pytest.raises(ValueError, match="norm='post'"):
        HiIRLayer(16, 2, (4, 8), init="zero_ln")


def test_create_model_none_is_a_type_error():
    with pytest.raises(TypeError, match="name=None must be a str"):
        create_model(None)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"dim": "16"}, "dim"),
        ({"depths": 2}, "depths"),
        ({"scale": 2.5}, "scale"),
        ({"shift": "no"}, "shift"),
        ({"num_heads": True}, "num_heads"),
        ({"img_mean": "div2k"}, "img_mean"),
        ({"ffn_ratio": "2"}, "ffn_ratio"),
        ({"backend": 1}, "backend"),
    ],
)
def test_override_of_the_wrong_type_names_the_field(override, field):
    with pytest.raises(TypeError, match=rf"^{field}"):
        create_model("hiir_sr_tiny_x2", **override)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task", "bogus"),
        ("attn_type", "bogus"),
        ("pos_bias", "bogus"),
        ("backend", "bogus"),
        ("ffn_type", "bogus"),
        ("norm", "bogus"),
        ("init", "bogus"),
        ("variant", "bogus"),
        ("layer_type", "bogus"),
        ("stage_end", "bogus"),
    ],
)
def test_config_names_are_checked_against_the_tables(field, value):
    with pytest.raises(ValueError, match=rf"{field}='bogus' is not known"):
        ColumnarConfig(**{field: value})


def test_unet_residual_name_is_checked():
    with pytest.raises(ValueError, match="residual='bogus' is not known"):
        UNetConfig(residual="bogus")


def test_lists_become_tuples():
    config = ColumnarConfig(depths=[2, 2], patch_sizes=[8, 32], img_mean=[0.5, 0.5, 0.5])
    assert config.depths == (2, 2) and config.patch_sizes == (8, 32)
    assert config == ColumnarConfig(depths=(2, 2), patch_sizes=(8, 32), img_mean=(0.5,) * 3)


def test_nan_drop_path_is_refused():
    with pytest.raises(ValueError, match="drop_path=nan must be a finite number"):
        create_model("hiir_sr_tiny_x2", drop_path=float("nan"))


def test_uint8_into_sr_model_is_refused(sr_model):
    with pytest.raises(TypeError, match=r"x\.float\(\) / 255"):
        sr_model(torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_model_other_float_dtype_gives_the_fp32_answer(sr_model, dtype):
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = sr_model(x.to(dtype))
        expected = sr_model(x.to(dtype).float()).to(dtype)  # the rule: compute in fp32, cast back
    assert out.dtype == dtype and out.shape == (1, 3, 16, 16)
    assert torch.equal(out, expected)


def test_model_empty_batch_is_named(sr_model):
    with pytest.raises(ValueError, match="empty batch"):
        sr_model(torch.rand(0, 3, 8, 8))


def test_model_wrong_channels_message_is_about_channels(sr_model):
    with pytest.raises(ValueError, match=r"expects \(B, 3, H, W\)"):
        sr_model(torch.rand(2, 1, 8, 8))


def test_residual_rescale_scale_is_saved_state():
    torch.manual_seed(0)
    rescaled = create_model("hiir_sr_tiny_x2", init="residual_rescale", **_TINY_SR).eval()
    default = create_model("hiir_sr_tiny_x2", **_TINY_SR).eval()
    scales = {k: v for k, v in rescaled.state_dict().items() if k.endswith(".scale")}
    assert scales and all(float(v) == pytest.approx(0.01) for v in scales.values())
    default.load_state_dict(rescaled.state_dict())
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(default(x), rescaled(x))


def test_default_scale_adds_no_state_dict_keys():
    """Checkpoints of default models keep the keys they had before the scale was state."""
    keys = create_model("hiir_sr_tiny_x2", **_TINY_SR).state_dict()
    assert keys and not [k for k in keys if k.endswith(".scale")]


def test_weights_of_a_default_model_reset_a_rescaled_receiver():
    torch.manual_seed(0)
    default = create_model("hiir_sr_tiny_x2", **_TINY_SR).eval()
    rescaled = create_model("hiir_sr_tiny_x2", init="residual_rescale", **_TINY_SR).eval()
    rescaled.load_state_dict(default.state_dict())
    residuals = [m for m in rescaled.modules() if isinstance(m, Residual)]
    assert residuals and all(float(m.scale) == 1.0 for m in residuals)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(rescaled(x), default(x))


def test_default_init_resets_the_scale():
    layer = HiIRLayer(16, 2, (4, 8), init="residual_rescale")
    init_weights(layer, "default")
    assert all(float(m.scale) == 1.0 for m in layer.modules() if isinstance(m, Residual))


def test_layers_inside_models_are_initialised_once(monkeypatch):
    calls = []
    import treeattn.models.base as base

    original = base.init_weights
    monkeypatch.setattr(base, "init_weights", lambda *a, **k: calls.append(1) or original(*a, **k))
    import treeattn.layers.hiir_layer as hiir_layer

    monkeypatch.setattr(hiir_layer, "init_weights", lambda *a, **k: calls.append("layer"))
    create_model("hiir_sr_tiny_x2", **_TINY_SR)
    assert calls == [1]


def test_meta_is_reported_by_each_model_class():
    for name in ("hiir_sr_tiny_x2", "hiir_unet_tiny"):
        meta = create_model(name).meta
        assert meta.minimum == 1 and meta.supports_bf16
        assert meta.task == model_config(name).task


@pytest.mark.parametrize("dtype", ["float16", torch.int64])
def test_model_dtype_must_be_a_float_torch_dtype(dtype):
    with pytest.raises(TypeError, match=r"floating-point torch\.dtype"):
        create_model("hiir_sr_tiny_x2", dtype=dtype, **_TINY_SR)
