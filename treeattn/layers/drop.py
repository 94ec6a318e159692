"""Stochastic depth (drop path) for residual branches."""

from __future__ import annotations

import torch
from torch import nn

from treeattn.validate import check_float

__all__ = ["DropPath", "check_drop_path", "drop_path_rates"]


def check_drop_path(p: object) -> float:
    """A stochastic-depth rate: a number in ``[0, 1)`` (the rule of :class:`DropPath`, which a
    model config applies to its largest rate, ``drop_path``, when it is created).

    Raises:
        TypeError: if ``p`` is not a number.
        ValueError: if it is NaN or outside ``[0, 1)``.
    """
    return check_float("drop_path", p, minimum=0.0, maximum=1.0, open_maximum=True)


class DropPath(nn.Module):
    """Zero a residual branch for whole samples with probability ``p`` while training.

    Kept samples are rescaled by ``1 / (1 − p)`` so the expectation is unchanged.

    Args:
        p: Drop probability in ``[0, 1)``.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_drop_path(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path_rates(max_rate: float, count: int) -> list[float]:
    """Linear stochastic-depth schedule from 0 to ``max_rate`` over ``count`` layers."""
    if count <= 1:
        return [0.0] * count
    return [max_rate * i / (count - 1) for i in range(count)]
