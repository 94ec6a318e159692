"""Optimisers (Adam / AdamW) and learning-rate schedules (linear warm-up, then cosine or multistep).

Schedules are plain :class:`torch.optim.lr_scheduler.LambdaLR` objects counted in *optimizer
steps*; the trainer steps them itself after every real optimizer step, so the schedule does not
depend on the number of processes or on gradient accumulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["OPTIMIZERS", "SCHEDULES", "build_optimizer", "build_scheduler", "lr_factor"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def build_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
) -> torch.optim.Optimizer:
    """Build an optimiser from :data:`OPTIMIZERS`.

    Args:
        name: ``"adam"`` or ``"adamw"``.
        params: Parameters to optimise.
        lr: Peak learning rate.
        weight_decay: Weight decay (decoupled for AdamW, L2 for Adam).
        betas: Adam betas.

    Raises:
        ValueError: For an unknown name or a non-positive learning rate.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name=}; choose one of {sorted(OPTIMIZERS)}")
    if lr <= 0:
        raise ValueError(f"{lr=} must be positive")
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, betas=betas)


def _cosine(
    step: int,
    *,
    warmup_steps: int,
    max_steps: int,
    min_ratio: float,
    milestones: Sequence[float],
    gamma: float,
) -> float:
    del milestones, gamma  # multistep only
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _multistep(
    step: int,
    *,
    warmup_steps: int,
    max_steps: int,
    min_ratio: float,
    milestones: Sequence[float],
    gamma: float,
) -> float:
    del warmup_steps, min_ratio  # cosine only
    return gamma ** sum(step >= m * max_steps for m in milestones)


SCHEDULES: dict[str, Callable[..., float]] = {"cosine": _cosine, "multistep": _multistep}


def lr_factor(
    step: int,
    *,
    decay: Callable[..., float],
    warmup_steps: int,
    max_steps: int,
    min_ratio: float,
    milestones: Sequence[float],
    gamma: float,
) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based).

    Linear warm-up from ``1 / (warmup_steps + 1)`` to 1 over ``warmup_steps`` steps, then
    ``decay``: cosine from 1 to ``min_ratio`` over the remaining steps, or multiplication by
    ``gamma`` at each milestone (fractions of ``max_steps``).
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return decay(
        step,
        warmup_steps=warmup_steps,
        max_steps=max_steps,
        min_ratio=min_ratio,
        milestones=milestones,
        gamma=gamma,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    *,
    warmup_steps: int,
    max_steps: int,
    min_lr_ratio: float = 0.0,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.5,
) -> LambdaLR:
    """Build the warm-up + decay schedule.

    Args:
        optimizer: The optimiser whose learning rate is scheduled.
        name: ``"cosine"`` or ``"multistep"`` (see :data:`SCHEDULES`).
        warmup_steps: Linear warm-up length in optimizer steps.
        max_steps: Total optimizer steps of the run.
        min_lr_ratio: Final cosine LR as a fraction of the peak LR.
        milestones: For multistep: fractions of ``max_steps`` where the LR is multiplied by
            ``gamma``.
        gamma: Multistep decay factor.

    Raises:
        ValueError: For an unknown name or inconsistent lengths.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown scheduler {name=}; choose one of {sorted(SCHEDULES)}")
    if not 0 <= warmup_steps <= max_steps:
        raise ValueError(f"{warmup_steps=} must be between 0 and {max_steps=}")
    if any(not 0 < m < 1 for m in milestones):
        raise ValueError(f"{milestones=} must be fractions of the run in (0, 1)")
    factor = partial(
        lr_factor,
        decay=SCHEDULES[name],
        warmup_steps=warmup_steps,
        max_steps=max_steps,
        min_ratio=min_lr_ratio,
        milestones=tuple(milestones),
        gamma=gamma,
    )
    return LambdaLR(optimizer, factor)
