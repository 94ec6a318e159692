"""Tree attention runs its levels window to window with the map-by-map result (values, grads)."""

from __future__ import annotations

import pytest
import torch

from treeattn.layers.attention import TreeAttention


def _level_by_level(attn: TreeAttention, x: torch.Tensor) -> torch.Tensor:
    """Each level back on the map before the next one cuts its windows (the plain definition)."""
    for level in attn.levels:
        x = level(x)
    return attn.proj(x)


@pytest.mark.parametrize(
    ("heads", "tree", "options"),
    [
        (1, (4, 16), {}),
        (2, (4, 16), {"attn_type": "cosine", "pos_bias": "table"}),
        (2, ((2, 4), (4, 8), (8, 16)), {"pass_values": True}),
        (4, (2, 4, 8), {"pos_bias": "none", "backend": "sdpa"}),
    ],
)
def test_window_to_window_equals_level_by_level(heads, tree, options):
    torch.manual_seed(0)
    attn = TreeAttention(16, heads, tree, dtype=torch.float64, **options)
    block = attn.multiple
    x = torch.randn(2, 2 * block[0], 3 * block[1], 16, dtype=torch.float64, requires_grad=True)
    windowed, plain = attn.mix(x), _level_by_level(attn, x)
    torch.testing.assert_close(windowed, plain, rtol=0, atol=1e-12)
    (grad_windowed,) = torch.autograd.grad(windowed.square().sum(), x)
    (grad_plain,) = torch.autograd.grad(plain.square().sum(), x)
    torch.testing.assert_close(grad_windowed, grad_plain, rtol=0, atol=1e-10)
