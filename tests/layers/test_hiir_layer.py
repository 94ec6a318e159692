"""HiIRLayer: shapes on any size, every option combination, construction errors, dtypes."""

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from treeattn import HiIRLayer


@given(
    batch=st.integers(1, 2),
    heads=st.integers(1, 3),
    head_dim=st.sampled_from([2, 4]),
    height=st.integers(1, 21),
    width=st.integers(1, 21),
    channels_last=st.booleans(),
    variant=st.sampled_from(["v1", "v2", "v3"]),
)
def test_output_shape_equals_input_shape(
    batch, heads, head_dim, height, width, channels_last, variant
):
    dim = heads * head_dim
    fmt = "BHWC" if channels_last else "BCHW"
    layer = HiIRLayer(dim, heads, (2, 8), variant=variant, data_format=fmt)
    shape = (batch, height, width, dim) if channels_last else (batch, dim, height, width)
    x = torch.randn(shape)
    y = layer(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


OPTIONS = {
    "variant": ["v1", "v2", "v3", "v4"],
    "attn_type": ["dot", "cosine"],
    "pos_bias": ["cpb", "table", "none"],
    "ffn_type": ["gated_dwconv", "leff", "mlp"],
    "norm": ["pre", "post"],
}
COMBOS = [
    dict(zip(OPTIONS, values, strict=True)) for values in itertools.product(*OPTIONS.values())
]


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("init", ["default", "residual_rescale", "weight_rescale", "trunc_normal"])
def test_every_option_combination_runs_forward_and_backward(shift, init):
    torch.manual_seed(0)
    x = torch.randn(1, 8, 9, 7, requires_grad=True)
    for options in COMBOS:
        sizes = (2, 4, 8) if options["variant"] == "v4" else (2, 8)
        layer = HiIRLayer(8, 2, sizes, shift=shift, init=init, drop_path=0.1, **options)
        y = layer(x)
        y.square().mean().backward()
        assert y.shape == x.shape, options
        grads = [p.grad for p in layer.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), options


def test_zero_ln_post_norm_layer_starts_as_identity():
    layer = HiIRLayer(8, 2, (2, 8), norm="post", init="zero_ln")
    x = torch.randn(2, 8, 10, 6)
    assert torch.equal(layer(x), x)


def test_residual_rescale_scales_both_branches():
    torch.manual_seed(0)
    plain = HiIRLayer(8, 2, (2, 8), data_format="BHWC")
    torch.manual_seed(0)
    scaled = HiIRLayer(8, 2, (2, 8), data_format="BHWC", init="residual_rescale")
    x = torch.randn(1, 8, 8, 8)
    for name in ("attn", "ffn"):
        branch = getattr(plain, name).branch(x)
        torch.testing.assert_close(getattr(scaled, name)(x) - x, 0.01 * branch)
        torch.testing.assert_close(getattr(plain, name)(x) - x, branch)


def test_weight_rescale_spares_the_position_bias_mlp():
    torch.manual_seed(0)
    plain = HiIRLayer(8, 2, (2, 8))
    torch.manual_seed(0)
    scaled = HiIRLayer(8, 2, (2, 8), init="weight_rescale")
    for (name, a), (_, b) in zip(plain.named_parameters(), scaled.named_parameters(), strict=True):
        if name.endswith("weight") and a.dim() > 1:
            factor = 1.0 if ".pos_bias." in name else 0.1
            torch.testing.assert_close(b, a * factor, msg=name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 10, "num_heads": 3}, "divisible by num_heads"),
        ({"dim": 6, "num_heads": 2}, "dim/2 divisible"),
        ({"patch_sizes": (8, 12)}, "patch_sizes"),
        ({"variant": "v9"}, "variant"),
        ({"variant": "v4"}, "at least 3 levels"),
        ({"attn_type": "l2"}, "attn_type"),
        ({"pos_bias": "rope"}, "pos_bias"),
        ({"ffn_type": "moe"}, "ffn_type"),
        ({"norm": "sandwich"}, "norm"),
        ({"backend": "flash3"}, "backend"),
        ({"data_format": "NCHW"}, "data_format"),
        ({"init": "xavier"}, "init"),
        ({"init": "zero_ln"}, "norm='post'"),
        ({"variant": "v1", "level": 2}, "level"),
        ({"drop_path": 1.0}, "drop_path"),
        ({"ffn_ratio": 0.0}, "ffn_ratio"),
    ],
)
def test_invalid_configuration_raises_a_clear_error(kwargs, match):
    args = {"dim": 8, "num_heads": 2, "patch_sizes": (2, 8)} | kwargs
    with pytest.raises(ValueError, match=match):
        HiIRLayer(**args)


def test_bf16_forward_runs_on_cpu():
    layer = HiIRLayer(8, 2, (2, 8), dtype=torch.bfloat16)
    x = torch.randn(1, 8, 10, 10, dtype=torch.bfloat16)
    y = layer(x)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape and torch.isfinite(y).all()


def test_position_bias_tables_are_buffers_built_once():
    layer = HiIRLayer(8, 2, (2, 8))
    bias = layer.attn.fn.levels[0].attend.pos_bias
    index, coords = bias.index, bias.coords
    layer(torch.randn(1, 8, 8, 8))
    layer(torch.randn(1, 8, 16, 24))
    assert bias.index is index and bias.coords is coords
    assert "index" not in layer.state_dict() and not any("coords" in k for k in layer.state_dict())


@pytest.mark.parametrize(
    ("fmt", "shape"),
    [
        ("BCHW", (1, 16, 8, 8)),
        ("BHWC", (1, 8, 8, 16)),
        ("BCHW", (8, 8, 8)),
        ("BHWC", (1, 8, 8, 8, 8)),
    ],
)
def test_input_with_the_wrong_layout_names_the_fix(fmt, shape):
    layer = HiIRLayer(8, 2, (2, 8), data_format=fmt)
    with pytest.raises(ValueError, match="data_format"):
        layer(torch.randn(shape))
