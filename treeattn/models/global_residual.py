"""The global residual a U-shape model adds to its output, chosen by name (``UNetConfig.residual``).

* ``input`` — the input itself (needs ``in_chans == out_chans``).
* ``view_mean`` — the mean of the views stacked along the input channels (dual-pixel left/right).
* ``none`` — nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import reduce
from torch import nn

__all__ = ["RESIDUAL_MODULES"]


class _InputResidual(nn.Module):
    def forward(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return out + x


class _ViewMeanResidual(nn.Module):
    """Adds the mean of the views stacked along the input channels (dual-pixel left/right)."""

    def __init__(self, out_chans: int) -> None:
        super().__init__()
        self.out_chans = out_chans

    def forward(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return out + reduce(x, "b (v c) h w -> b c h w", "mean", c=self.out_chans)


class _NoResidual(nn.Module):
    def forward(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return out


# Residual name → builder taking ``out_chans``.
RESIDUAL_MODULES: dict[str, Callable[[int], nn.Module]] = {
    "input": lambda out_chans: _InputResidual(),
    "view_mean": _ViewMeanResidual,
    "none": lambda out_chans: _NoResidual(),
}
