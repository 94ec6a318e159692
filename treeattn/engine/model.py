"""Building the run's model from the registry and checking that the run's settings suit it."""

from __future__ import annotations

from typing import Any

from torch import nn

from treeattn.engine.config import TrainConfig
from treeattn.engine.task import TaskSpec

__all__ = ["build_model", "check_model_fits"]


def build_model(spec: TaskSpec, cfg: TrainConfig) -> nn.Module:
    """Create the registry model with the run's channels and the user's overrides.

    Overrides, later winning: ``in_chans``/``out_chans`` from ``--channels`` (twice the input
    channels with ``--dual-pixel``), the task's ``dual_pixel_overrides`` with ``--dual-pixel``,
    then ``--model-overrides``.
    """
    from treeattn.models import create_model

    views = 2 if cfg.dual_pixel else 1
    overrides = {"in_chans": cfg.channels * views, "out_chans": cfg.channels}
    if cfg.dual_pixel:
        overrides.update(spec.dual_pixel_overrides)
    overrides.update(cfg.model_overrides)
    return create_model(cfg.model, **overrides)


def check_model_fits(meta: Any, *, patch_size: int, mixed_precision: str) -> None:
    """Refuse a training patch the model would have to pad, or a precision it does not claim.

    Args:
        meta: The model's :class:`treeattn.models.meta.ModelMeta`.
        patch_size: Training input patch side.
        mixed_precision: ``no``, ``bf16`` or ``fp16``.

    Raises:
        ValueError: If ``patch_size`` is below ``meta.minimum`` or not a multiple of
            ``meta.multiple_of`` (the message suggests the nearest valid sizes), or the model
            does not declare support for the requested half precision.
    """
    supported = {"no": True, "bf16": meta.supports_bf16, "fp16": meta.supports_fp16}
    if not supported[mixed_precision]:
        raise ValueError(
            f"model {meta.name!r} is not tested with --mixed-precision {mixed_precision} "
            f"(meta.supports_{mixed_precision}=False); use --mixed-precision no or bf16"
        )
    if patch_size >= meta.minimum and patch_size % meta.multiple_of == 0:
        return
    low = max(meta.minimum, patch_size - patch_size % meta.multiple_of)
    low += (-low) % meta.multiple_of
    high = low if low > patch_size else low + meta.multiple_of
    raise ValueError(
        f"--patch-size {patch_size} does not suit model {meta.name!r}, which needs multiples of "
        f"{meta.multiple_of} (at least {meta.minimum}); use --patch-size "
        f"{sorted({low, high} - {0})} or a model with a smaller tree"
    )
