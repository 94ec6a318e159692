"""Exponential moving average (EMA) of model weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA:
    """A frozen copy of a model whose weights track ``decay``-weighted averages of the model's.

    After each optimizer step call :meth:`update`. Floating-point parameters and buffers are
    averaged; integer buffers are copied. The object has ``state_dict`` / ``load_state_dict`` so
    :meth:`accelerate.Accelerator.register_for_checkpointing` saves and restores it exactly.

    Args:
        model: The (unwrapped) model to track; the copy lives on the same device.
        decay: Averaging factor in ``[0, 1)``; the effective decay warms up as
            ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates so early averages are useful.
    """

    def __init__(self, model: nn.Module, *, decay: float) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"{decay=} must be in [0, 1)")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the current weights of ``model`` into the average."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        source = model.state_dict()
        for name, average in self.module.state_dict().items():
            if average.is_floating_point():
                average.lerp_(source[name].detach().to(average.dtype), 1 - decay)
            else:
                average.copy_(source[name])

    def state_dict(self) -> dict[str, Any]:
        """Averaged weights plus the update counter."""
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
