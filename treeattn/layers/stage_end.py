"""Stage-end blocks: the convolution that closes each stage (``conv1`` | ``linear`` | ``conv3``).

These are the paper's "conv1 / linear / conv3" scaling study, not FFN types. Input and output are
``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn

from treeattn.validate import check_choice, check_int

__all__ = ["STAGE_ENDS", "build_stage_end"]


def _conv1(dim: int, *, device=None, dtype=None) -> nn.Module:
    return nn.Conv2d(dim, dim, 3, padding=1, device=device, dtype=dtype)


def _linear(dim: int, *, device=None, dtype=None) -> nn.Module:
    return nn.Conv2d(dim, dim, 1, device=device, dtype=dtype)


def _conv3(dim: int, *, device=None, dtype=None) -> nn.Module:
    if dim % 4:
        raise ValueError(f"stage_end='conv3' needs {dim=} divisible by 4 (it squeezes to dim/4)")
    mid = dim // 4
    factory = {"device": device, "dtype": dtype}
    return nn.Sequential(
        nn.Conv2d(dim, mid, 3, padding=1, **factory),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(mid, mid, 1, **factory),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(mid, dim, 3, padding=1, **factory),
    )


STAGE_ENDS = {"conv1": _conv1, "linear": _linear, "conv3": _conv3}


def build_stage_end(
    kind: str,
    dim: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build a stage-end block.

    Args:
        kind: ``conv1`` (dense 3×3), ``linear`` (1×1) or ``conv3`` (3×3 → C/4, LeakyReLU, 1×1,
            LeakyReLU, 3×3 → C).
        dim: Channels.
        device: Parameter device.
        dtype: Parameter dtype.
    """
    check_choice("stage_end", kind, STAGE_ENDS)
    check_int("dim", dim, minimum=1)
    return STAGE_ENDS[kind](dim, device=device, dtype=dtype)
