"""Tree attention runs its levels window to window with the map-by-map result (values, grads)."""

from __future__ import annotations

import types

import pytest
import torch

from treeattn import HiIRLayer
from treeattn.layers.attention import TreeAttention
from treeattn.ops.bands import BandSettings, band_wise


def _level_by_level(attn: TreeAttention, x: torch.Tensor) -> torch.Tensor:
    """Each level back on the map before the next one cuts its windows (the plain definition)."""
    for level in attn.levels:
        x = level(x)
    return attn.proj(x)


def _plain(attn: TreeAttention) -> None:
    """Make ``attn`` run the plain definition (the code before the window-to-window path)."""
    attn.mix = types.MethodType(_level_by_level, attn)


def _grads(module: torch.nn.Module, x: torch.Tensor, out: torch.Tensor) -> list[torch.Tensor]:
    inputs = [x, *module.parameters()]
    return list(torch.autograd.grad(out.square().sum(), inputs))


TREES = [
    (1, (4, 16), {}),
    (2, (4, 16), {"attn_type": "cosine", "pos_bias": "table"}),
    (2, ((2, 4), (4, 8), (8, 16)), {"pass_values": True}),
    (4, (2, 4, 8), {"pos_bias": "none", "backend": "sdpa"}),
    (2, ((4, 2), (8, 6), (16, 12)), {"pos_bias": "table", "backend": "math"}),
]


@pytest.mark.parametrize(("heads", "tree", "options"), TREES)
def test_window_to_window_equals_level_by_level_with_every_gradient(heads, tree, options):
    torch.manual_seed(0)
    attn = TreeAttention(16, heads, tree, dtype=torch.float64, **options).train()
    block = attn.multiple
    x = torch.randn(2, 2 * block[0], 3 * block[1], 16, dtype=torch.float64, requires_grad=True)
    windowed, plain = attn.mix(x), _level_by_level(attn, x)
    torch.testing.assert_close(windowed, plain, rtol=0, atol=1e-12)
    # The input's gradient and every parameter's (projections, position biases, logit scales).
    for got, want in zip(_grads(attn, x, windowed), _grads(attn, x, plain), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "options",
    [
        {"shift": True},
        {"shift": True, "variant": "v4", "patch_sizes": (2, 4, 8), "pos_bias": "table"},
        {"patch_sizes": ((2, 4), (4, 8)), "shift": True, "pos_bias": "none"},
        {"attn_type": "cosine", "norm": "post"},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
@pytest.mark.parametrize("size", [(37, 29), (5, 19)])
def test_layer_equals_the_plain_tree_padded_shifted_and_band_wise(options, size):
    """The whole layer in float32 — padding, shifted grid, band-wise tiles — against the same
    weights running the plain definition on whole maps."""
    torch.manual_seed(0)
    layer = HiIRLayer(16, 2, **{"patch_sizes": (4, 16), **options}).eval()
    plain = HiIRLayer(16, 2, **{"patch_sizes": (4, 16), **options}).eval()
    plain.load_state_dict(layer.state_dict())
    _plain(plain.attn.fn)
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        reference = plain(x)
        whole = layer(x)
        with band_wise(layer, BandSettings(min_pixels=0, tile_pixels=16 * 16)):
            banded = layer(x)
    torch.testing.assert_close(whole, reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(banded, reference, rtol=0, atol=1e-6)


def test_window_to_window_compiles_as_one_graph():
    torch.manual_seed(0)
    attn = TreeAttention(16, 2, (2, 4, 8), pass_values=True, shift=True).eval()
    compiled = torch.compile(attn, backend="eager", fullgraph=True)
    x = torch.randn(1, 13, 21, 16)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), attn(x), rtol=0, atol=1e-6)
