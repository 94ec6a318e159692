"""Inference stores maps channels-last (convolutions follow); training keeps the default."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from treeattn.ops.layout import inference_layout


def _channels_last(x: torch.Tensor) -> bool:
    return x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("channels", [1, 3])
def test_inference_layout_is_channels_last_and_convolutions_follow(channels):
    x = torch.randn(2, channels, 9, 7)
    weight = torch.randn(5, channels, 3, 3)
    with torch.no_grad():
        y = inference_layout(x)
        assert torch.equal(y, x) and _channels_last(y)
        assert inference_layout(y) is y
        out = F.conv2d(y, weight, padding=1)
    assert _channels_last(out)
    torch.testing.assert_close(out, F.conv2d(x, weight, padding=1))


def test_training_keeps_the_layout():
    x = torch.randn(1, 3, 5, 5)
    assert inference_layout(x) is x
    with torch.no_grad():
        assert inference_layout(torch.randn(3, 5, 5)).dim() == 3  # not a map: unchanged
