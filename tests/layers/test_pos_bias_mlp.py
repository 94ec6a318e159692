"""The continuous position bias's MLP: its faster first layer gives nn.Sequential's values and
gradients to the bit, and steps aside for hooks and swapped-in layers."""

from __future__ import annotations

import torch
from torch import nn

from treeattn.layers.pos_bias import ContinuousPositionBias


def _bias(seed: int = 0) -> ContinuousPositionBias:
    torch.manual_seed(seed)
    return ContinuousPositionBias((7, 5), 3)


def test_values_and_gradients_are_the_sequentials_to_the_bit():
    bias = _bias()
    grad = torch.randn(bias.coords.shape[0], 3)
    fast = bias._mlp()
    plain = bias.mlp(bias.coords)
    assert torch.equal(fast, plain)
    params = list(bias.mlp.parameters())
    got = torch.autograd.grad(fast, params, grad)
    want = torch.autograd.grad(plain, params, grad)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


def test_a_hook_on_the_first_layer_runs():
    bias = _bias()
    seen = []
    bias.mlp[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    bias()
    assert seen == [(bias.coords.shape[0], 512)]


def test_a_swapped_in_first_layer_is_called():
    bias = _bias()

    class Scaled(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    first = bias.mlp[0]
    scaled = Scaled(first.in_features, first.out_features)
    scaled.load_state_dict(first.state_dict())
    expected = bias.mlp[2](bias.mlp[1](2 * first(bias.coords)))
    bias.mlp[0] = scaled
    assert torch.equal(bias._mlp(), expected)
