"""Relative-position coordinates and index tables for windows of ``g1 × g2`` tokens.

Offsets are measured in window-grid units, so the same tables serve every tree level: at level 0 a
window is a patch of adjacent pixels, at higher levels a grid of pixels at a stride.
"""

from __future__ import annotations

import math

import torch

__all__ = ["num_offsets", "relative_coords_table", "relative_position_index"]


def num_offsets(group: tuple[int, int]) -> int:
    """Distinct (query − key) offsets in a ``g1 × g2`` window: ``(2g1−1)·(2g2−1)``."""
    return (2 * group[0] - 1) * (2 * group[1] - 1)


def relative_position_index(
    group: tuple[int, int], *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Index of each (query, key) pair's offset in a :func:`num_offsets` table.

    Args:
        group: Window size in tokens ``(g1, g2)``.
        device: Where to build the table.

    Returns:
        Long tensor ``(g1·g2, g1·g2)``.
    """
    g1, g2 = group
    rows = torch.arange(g1, device=device)
    cols = torch.arange(g2, device=device)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij")).flatten(1)  # (2, T)
    delta = grid[:, :, None] - grid[:, None, :]  # (2, T, T)
    return (delta[0] + g1 - 1) * (2 * g2 - 1) + (delta[1] + g2 - 1)


def relative_coords_table(
    group: tuple[int, int],
    *,
    bound: float = 8.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Log-spaced relative coordinates, one row per offset, for a continuous position bias.

    Offsets ``(−g+1 … g−1)`` are normalised to ``±bound`` and mapped through
    ``sign(x)·log2(1 + |x|) / log2(bound)``.

    Args:
        group: Window size in tokens ``(g1, g2)``.
        bound: The normalised range of the largest offset.
        device: Where to build the table.
        dtype: Its floating dtype.

    Returns:
        ``((2g1−1)·(2g2−1), 2)`` table, rows ordered as :func:`relative_position_index` expects.
    """
    axes = []
    for g in group:
        offsets = torch.arange(-(g - 1), g, device=device, dtype=torch.float64)
        axes.append(offsets * bound / (g - 1) if g > 1 else offsets)
    table = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 2)
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(bound)
    return table.to(dtype or torch.get_default_dtype())
