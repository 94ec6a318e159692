"""Architecture behaviour: residual paths, image mean, init applied once, input checks."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from torch import nn

from treeattn.layers.drop import DropPath
from treeattn.layers.pos_bias import ContinuousPositionBias
from treeattn.layers.residual import Residual
from treeattn.models import ModelMeta, create_model

_SR = {"dim": 8, "depths": (1,), "num_heads": 2, "upsampler_dim": 8}
_UNET = {
    "dims": (4, 8, 16),
    "depths": (1, 1, 1),
    "decoder_depths": (1, 1),
    "num_heads": (1, 1, 1),
    "patch_sizes": ((2, 4), (2, 4), (2, 4)),
}


def _zero_last_conv(model: nn.Module) -> None:
    last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


def test_sr_output_is_the_image_mean_when_the_tail_is_zero():
    model = create_model("hiir_sr_tiny_x3", **_SR).eval()
    _zero_last_conv(model)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 7, 5))
    mean = rearrange(torch.tensor(model.config.img_mean), "c -> 1 c 1 1")
    assert out.shape == (1, 3, 21, 15)
    assert torch.allclose(out, mean.expand_as(out))


def test_x1_global_residual_returns_the_input_when_the_tail_is_zero():
    model = create_model(
        "hiir_sr_tiny_x2",
        scale=1,
        global_residual=True,
        in_chans=1,
        out_chans=1,
        img_mean=(0.5,),
        **_SR,
    ).eval()
    _zero_last_conv(model)
    x = torch.rand(2, 1, 9, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), x)


@pytest.mark.parametrize(
    ("name", "in_chans", "expected"),
    [
        ("hiir_unet_dn_color", 3, lambda x: x),
        ("hiir_unet_defocus_dp", 6, lambda x: (x[:, :3] + x[:, 3:]) / 2),
    ],
)
def test_unet_global_residual(name, in_chans, expected):
    model = create_model(name, **_UNET).eval()
    _zero_last_conv(model)
    x = torch.rand(1, in_chans, 10, 13)
    with torch.no_grad():
        assert torch.allclose(model(x), expected(x), atol=1e-6)
    assert model.meta.in_chans == in_chans and model.meta.out_chans == 3


def test_unet_without_residual_outputs_only_the_network():
    model = create_model("hiir_unet_tiny", residual="none", **_UNET).eval()
    _zero_last_conv(model)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 8)).abs().max() == 0


def test_unet_level1_keeps_double_width_unless_reduced():
    keep = create_model("hiir_unet_tiny", **_UNET)
    reduce = create_model("hiir_unet_tiny", reduce_level1=True, **_UNET)
    assert isinstance(keep.reduces[0], nn.Identity) and keep.output.in_channels == 8
    assert isinstance(reduce.reduces[0], nn.Conv2d) and reduce.output.in_channels == 4


def test_init_scheme_is_applied_exactly_once():
    torch.manual_seed(0)
    default = create_model("hiir_sr_tiny_x2", **_SR)
    torch.manual_seed(0)
    rescaled = create_model("hiir_sr_tiny_x2", init="weight_rescale", **_SR)
    qkv = "stages.0.layers.0.attn.fn.levels.0.qkv.linear.weight"
    weights_d, weights_r = dict(default.named_parameters()), dict(rescaled.named_parameters())
    assert torch.allclose(weights_r[qkv], 0.1 * weights_d[qkv])
    assert torch.allclose(weights_r["shallow.weight"], 0.1 * weights_d["shallow.weight"])
    for name, module in rescaled.named_modules():
        if isinstance(module, ContinuousPositionBias):
            for pname, param in module.named_parameters():
                assert torch.equal(param, weights_d[f"{name}.{pname}"])


def test_residual_rescale_and_zero_ln_reach_every_layer():
    model = create_model("hiir_sr_tiny_x2_residual_rescale", **_SR)
    scales = [m.scale for m in model.modules() if isinstance(m, Residual)]
    assert scales and all(s == 0.01 for s in scales)
    model = create_model("hiir_sr_tiny_x2_zero_ln", **_SR).eval()
    x = torch.rand(1, 3, 8, 8)
    stage = model.stages[0]
    feat = torch.rand(1, 8, 8, 8)
    with torch.no_grad():  # every layer starts as the identity
        channels_last = rearrange(feat, "b c h w -> b h w c")
        assert torch.equal(stage.layers(channels_last), channels_last)
        assert model(x).shape == (1, 3, 16, 16)


def test_drop_path_rises_linearly_over_all_layers():
    model = create_model("hiir_unet_tiny", drop_path=0.2, **_UNET)
    rates = sorted({m.p for m in model.modules() if isinstance(m, DropPath)})
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    assert len(rates) == 5  # 3 encoder/latent layers + 2 decoder layers, one rate each


def test_wrong_input_channels_raise():
    model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1, **_UNET)
    with pytest.raises(ValueError, match=r"expects \(B, 1, H, W\) input, got \(1, 3, 8, 8\)"):
        model(torch.rand(1, 3, 8, 8))


def test_meta_multiple_and_padding():
    assert create_model("hiir_b_sr_x2", device="meta").meta.multiple_of == 64
    assert create_model("hiir_b_sr_x2_v4", device="meta").meta.multiple_of == 128
    assert create_model("swin_b_sr_x2", device="meta").meta.multiple_of == 8
    assert create_model("hiir_unet_dn_color", device="meta").meta.multiple_of == 8
    meta = ModelMeta(
        "m", "sr", 2, 3, 3, multiple_of=8, minimum=4, supports_bf16=True, supports_fp16=False
    )
    assert meta.padding_for(13, 16) == (3, 0)
    assert meta.padding_for(2, 9) == (6, 7)
    with pytest.raises(ValueError, match="must be positive"):
        meta.padding_for(0, 5)


def test_model_output_does_not_depend_on_padding_it_does_itself():
    torch.manual_seed(0)
    model = create_model("hiir_unet_tiny", **_UNET).eval()
    x = torch.rand(1, 3, 13, 10)
    pad_h, pad_w = model.meta.padding_for(13, 10)
    padded = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    with torch.no_grad():
        assert torch.allclose(model(x), model(padded)[..., :13, :10], atol=1e-6)
