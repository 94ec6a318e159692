"""Receptive fields of the Hi-IR models: analytic (exact, from the structure) and empirical.

* :func:`dependency_mask` — the exact set of input pixels one output pixel depends on, for a given
  input size (padding and shifted grids included), from the model's config alone.
* :func:`analytic_receptive_field` — the largest such set's extent, ``(height, width)`` in input
  pixels, on an image large enough that no border is reached (the unbounded receptive field).
* :func:`effective_receptive_field` — the empirical, gradient-based map: ``|∂ out(i, j) / ∂ in|``
  summed over channels, normalised to a maximum of 1.

The analytic sets follow the receptive-field invariants of the Hi-IR tree (``docs/layers.md``,
"Receptive field (tested exactly)"), and come from the model's own modules (see
:mod:`treeattn.layers.receptive`): each attention module reports its windows (levels, padding
multiple, shift), convolutions and pixel (un)shuffles are read off the modules, and each model
reports its data flow (padding, branches, crop) — nothing here restates the architecture.
"""

from __future__ import annotations

import numpy as np
import torch

from treeattn.analysis.dependency import AxisBuilder
from treeattn.layers.receptive import describe_axis
from treeattn.models.base import RestorationModel

__all__ = [
    "analytic_receptive_field",
    "axis_builder",
    "dependency_mask",
    "effective_receptive_field",
]


def axis_builder(model: RestorationModel, length: int, axis: int) -> AxisBuilder:
    """The model's ops along one axis (0 = height, 1 = width) for an input of ``length`` pixels."""
    if not isinstance(model, RestorationModel):
        raise TypeError(f"need a treeattn model, got {type(model).__name__}")
    if axis not in (0, 1):
        raise ValueError(f"{axis=} must be 0 (height) or 1 (width)")
    builder = AxisBuilder(length)
    describe_axis(model, builder, axis)
    return builder


def dependency_mask(
    model: RestorationModel, size: tuple[int, int], position: tuple[int, int]
) -> torch.Tensor:
    """Exact set of input pixels that output pixel ``position`` depends on.

    Args:
        model: A treeattn model.
        size: Input ``(H, W)``.
        position: Output pixel ``(i, j)`` (output coordinates, ``scale·H × scale·W``).

    Returns:
        ``(H, W)`` bool tensor.
    """
    scale = model.meta.scale
    masks = []
    for axis in (0, 1):
        if not 0 <= position[axis] < size[axis] * scale:
            raise ValueError(f"{position=} is outside the {scale}×{size} output")
        builder = axis_builder(model, size[axis], axis)
        out = np.zeros((1, size[axis] * scale), dtype=bool)
        out[0, position[axis]] = True
        masks.append(torch.from_numpy(builder.back(out)[0].copy()))
    rows, cols = masks
    return torch.outer(rows, cols)


def _extent(builder: AxisBuilder, positions: np.ndarray, length_out: int) -> int | None:
    """Largest dependency extent of the output ``positions``; ``None`` if one reaches a border."""
    out = np.zeros((len(positions), length_out), dtype=bool)
    out[np.arange(len(positions)), positions] = True
    deps = builder.back(out)
    if deps[:, 0].any() or deps[:, -1].any():
        return None
    first = deps.argmax(axis=1)
    last = deps.shape[1] - 1 - deps[:, ::-1].argmax(axis=1)
    return int((last - first).max() + 1)


def _axis_extent(model: RestorationModel, axis: int) -> int:
    scale = model.meta.scale
    length = 8 * axis_builder(model, 1, axis).period
    full_period = False  # grow the input with the centre pixel alone, then check a full period
    while True:
        builder = axis_builder(model, length, axis)
        period = builder.period * scale
        start = (length * scale // 2) // period * period
        positions = np.arange(start, start + (period if full_period else 1))
        extent = _extent(builder, positions, length * scale)
        if extent is None:
            length *= 2
        elif full_period:
            return extent
        else:
            full_period = True


def analytic_receptive_field(model: RestorationModel) -> tuple[int, int]:
    """Largest extent ``(height, width)`` in input pixels of one output pixel's dependency set.

    Evaluated away from image borders (on an input grown until no set touches a border), over one
    full alignment period of output positions, so it is the unbounded receptive field.
    """
    return _axis_extent(model, 0), _axis_extent(model, 1)


def effective_receptive_field(
    model: torch.nn.Module,
    size: tuple[int, int],
    *,
    in_chans: int,
    position: tuple[int, int] | None = None,
    samples: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """Gradient-based effective receptive field of one output pixel.

    Args:
        model: Any ``(B, C, H, W)`` model; its mode (train/eval) is left as it is.
        size: Input ``(H, W)``.
        in_chans: Input channels.
        position: Output pixel ``(i, j)``; default the centre of the output.
        samples: Number of random inputs (uniform in [0, 1]) to average over.
        seed: Seed of the random inputs.

    Returns:
        ``(H, W)`` float map of ``|∂ out(i, j) / ∂ in|`` summed over channels and averaged over
        samples, normalised to a maximum of 1 (all zeros if the gradient is zero).
    """
    if samples < 1:
        raise ValueError(f"{samples=} must be at least 1")
    param = next(model.parameters())
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(size, dtype=torch.float64)
    for _ in range(samples):
        x = torch.rand(1, in_chans, *size, generator=generator, dtype=param.dtype)
        x = x.to(param.device).requires_grad_(True)
        out = model(x)
        i, j = position if position is not None else (out.shape[2] // 2, out.shape[3] // 2)
        (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
        total += grad.abs().sum(dim=(0, 1)).to(device="cpu", dtype=torch.float64)
    peak = total.max()
    return total / peak if peak > 0 else total
