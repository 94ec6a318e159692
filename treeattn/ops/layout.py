"""Memory layout of the ``(B, C, H, W)`` maps a model passes between its layers.

The Hi-IR layers compute channels-last (``(B, H, W, C)``): their ``b c h w -> b h w c``
rearrange is a free view only when the map is stored channels-last (``torch.channels_last``), and
otherwise every band-wise tile reads a strided map and elementwise ops mix two layouts. Storing
the maps channels-last makes every step between convolutions and layers a view: a model stores
its input so (:func:`inference_layout`), and convolutions keep the layout they are given.
"""

from __future__ import annotations

import torch

__all__ = ["inference_layout"]


def inference_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` stored channels-last for inference (no autograd); unchanged while training.

    Values are unchanged either way (a copy at most). Training keeps the default layout, so its
    gradients (and the buckets of distributed training) are laid out as before.

    Args:
        x: A ``(B, C, H, W)`` map.

    Returns:
        ``x`` in ``torch.channels_last`` memory format without autograd (itself if it already
        is; a single channel gets the channels-last strides too, which convolutions follow),
        else ``x`` itself.
    """
    if torch.is_grad_enabled() or x.dim() != 4 or _stored_channels_last(x):
        return x
    # Through empty(): for one channel, .contiguous(memory_format=...) keeps the default strides,
    # which both layouts accept, and a convolution then returns the default layout.
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    return out.copy_(x)


def _stored_channels_last(x: torch.Tensor) -> bool:
    return x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last)
