"""Tiled inference: run an image-to-image function on overlapping tiles and blend them smoothly.

Large images do not fit in memory (or in cache) as a whole. :func:`tiled_apply` cuts the input
into overlapping ``tile × tile`` crops, runs ``fn`` on each and blends the outputs with weights
that cross-fade inside every overlap. Along each interior tile edge the weight is zero for a
*margin* of ``(overlap - blend) // 2`` pixels, then rises smoothly (raised cosine) over ``blend``
pixels. Image borders are never faded.

Exactness: a pixel only receives weight from tiles in which it lies at least ``margin`` pixels
away from every interior edge. So when the receptive-field *radius* of ``fn`` is at most
``margin``, every blended value is the whole-image value and the tiled result equals the
whole-image result (up to float rounding). With ``blend=1`` that is the case as soon as
``overlap`` is at least the receptive-field *width* ``2 * radius + 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from einops import einsum

from treeattn.validate import check_int

__all__ = ["blend_weights", "check_tile_overlap", "tile_starts", "tiled_apply"]


def check_tile_overlap(
    tile: object, overlap: object, *, tile_name: str = "tile", overlap_name: str = "overlap"
) -> None:
    """The tiling rule, checked where a tile size and overlap enter: ``0 <= overlap < tile``.

    Neighbouring tiles then advance by at least one pixel. Every tiling setting (this module,
    the engine's ``--tile`` / ``--tile-overlap``) is checked here.

    Args:
        tile: Tile side in pixels (an int of at least 1).
        overlap: Overlap of neighbouring tiles in pixels (an int).
        tile_name: How the caller calls the tile size, for the message (e.g. ``--tile``).
        overlap_name: How the caller calls the overlap (e.g. ``--tile-overlap``).

    Raises:
        TypeError: If either is not an int.
        ValueError: If ``tile`` is below 1 or ``overlap`` is not in ``[0, tile)``.
    """
    check_int(tile_name, tile)
    check_int(overlap_name, overlap)
    # Keyword names read `overlap=8`, command-line flags `--tile-overlap 8`.
    said_overlap, said_tile = (
        f"{name}{'=' if name.isidentifier() else ' '}{value}"
        for name, value in ((overlap_name, overlap), (tile_name, tile))
    )
    if tile < 1:
        raise ValueError(f"{said_tile} must be a positive number of pixels")
    if not 0 <= overlap < tile:
        raise ValueError(
            f"{said_overlap} must be >= 0 and smaller than {said_tile}; "
            f"lower {overlap_name} or raise {tile_name}"
        )


def tile_starts(length: int, *, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering ``[0, length)``; neighbours share ``overlap`` px or more.

    Args:
        length: Size of the axis to cover.
        tile: Tile size along the axis.
        overlap: Minimum number of pixels shared by neighbouring tiles.

    Returns:
        Sorted start offsets; the last tile ends exactly at ``length``. A single ``[0]`` when the
        axis fits in one tile.

    Raises:
        TypeError: If an argument is not an int.
        ValueError: If ``length`` or ``tile`` is below 1, or ``overlap`` is negative or not
            smaller than ``tile``.
    """
    check_int("length", length, minimum=1)
    check_tile_overlap(tile, overlap)
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    starts = [min(i * stride, length - tile) for i in range(count)]
    return sorted(set(starts))


def _ramp(size: int, *, fade_start: bool, fade_end: bool, margin: int, blend: int) -> torch.Tensor:
    """1-D weight: zero for ``margin`` pixels, a raised-cosine rise over ``blend``, then one."""
    weight = torch.ones(size, dtype=torch.float64)
    rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(blend, dtype=torch.float64) + 0.5) / blend)
    edge = torch.cat([torch.zeros(margin, dtype=torch.float64), rise])
    if fade_start:
        weight[: edge.numel()] = torch.minimum(weight[: edge.numel()], edge)
    if fade_end:
        weight[size - edge.numel() :] = torch.minimum(weight[size - edge.numel() :], edge.flip(0))
    return weight


def blend_weights(
    size: tuple[int, int],
    *,
    start: tuple[int, int],
    image: tuple[int, int],
    margin: int,
    blend: int,
) -> torch.Tensor:
    """2-D blending weight ``(h, w)`` of one tile (float64), fading only at interior edges.

    Args:
        size: Tile output size ``(h, w)``.
        start: Tile output offset ``(top, left)`` inside the output image.
        image: Output image size ``(H, W)``.
        margin: Pixels at each interior edge that get zero weight.
        blend: Width of the raised-cosine rise after the margin.

    Returns:
        A float64 tensor of shape ``(h, w)``.
    """
    rows = _ramp(
        size[0],
        fade_start=start[0] > 0,
        fade_end=start[0] + size[0] < image[0],
        margin=margin,
        blend=blend,
    )
    cols = _ramp(
        size[1],
        fade_start=start[1] > 0,
        fade_end=start[1] + size[1] < image[1],
        margin=margin,
        blend=blend,
    )
    return einsum(rows, cols, "h, w -> h w")


def _checked(fn: Callable[[torch.Tensor], torch.Tensor], crop: torch.Tensor, scale: int):
    """``fn(crop)``, refused unless it is a batch of the crop's batch size and ``scale`` × size."""
    y = fn(crop)
    expected = (crop.shape[-2] * scale, crop.shape[-1] * scale)
    if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[0] != crop.shape[0]:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"fn must return a (B, C, H, W) tensor with the input's batch size "
            f"{crop.shape[0]}, got {shape}"
        )
    if tuple(y.shape[-2:]) != expected:
        raise ValueError(
            f"fn returned a tile of size {tuple(y.shape[-2:])} for an input tile of "
            f"{tuple(crop.shape[-2:])}; expected {expected} — check {scale=}"
        )
    return y


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    blend: int | None = None,
    scale: int = 1,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` and blend the results.

    Args:
        fn: Image-to-image function ``(B, C, h, w) -> (B, C', h * scale, w * scale)``.
        x: Input batch ``(B, C, H, W)``.
        tile: Input tile size (square). Images no larger than ``tile`` are processed whole.
        overlap: Minimum overlap between neighbouring input tiles, in input pixels.
        blend: Width of the cross-fade inside each overlap (input pixels); defaults to
            ``max(1, overlap // 2)``. The remaining ``(overlap - blend) // 2`` pixels at each
            interior edge are discarded (see the module docstring for exactness).
        scale: Output/input size ratio of ``fn`` (super-resolution factor).

    Returns:
        The blended output ``(B, C', H * scale, W * scale)`` in ``x``'s dtype, on ``x``'s
        device (accumulated in at least float32).

    Raises:
        TypeError: If ``x`` is not a floating-point tensor (the blend of integer tiles would be
            truncated), ``fn`` is not callable, or ``tile``, ``overlap``, ``blend`` or ``scale``
            is not an int.
        ValueError: If ``x`` is not 4-D or is empty, the tile/overlap/blend/scale do not fit, or
            ``fn`` returns a tile of the wrong size (also when the image fits in one tile).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not callable(fn):
        raise TypeError(f"fn must be callable (a model or function), got {type(fn).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"x has dtype {x.dtype}; tiles are cross-faded with fractional weights, so pass "
            "floats (e.g. x.float() / 255 for uint8 images, or x.float() and round the result)"
        )
    if x.ndim != 4 or min(x.shape) == 0:
        raise ValueError(f"x must be a non-empty (B, C, H, W) batch, got shape {tuple(x.shape)}")
    check_tile_overlap(tile, overlap)
    check_int("scale", scale, minimum=1)
    blend = max(1, overlap // 2) if blend is None else check_int("blend", blend)
    if not 1 <= blend <= max(1, overlap):
        raise ValueError(f"{blend=} must be between 1 and {overlap=}")
    _, _, height, width = x.shape
    if height <= tile and width <= tile:
        return _checked(fn, x, scale)
    margin = max(0, (overlap - blend) // 2)
    rows = tile_starts(height, tile=tile, overlap=overlap)
    cols = tile_starts(width, tile=tile, overlap=overlap)
    out_size = (height * scale, width * scale)
    acc_dtype = torch.promote_types(x.dtype, torch.float32)
    out = None
    total = torch.zeros(out_size, dtype=acc_dtype, device=x.device)
    for top in rows:
        for left in cols:
            crop = x[..., top : top + tile, left : left + tile]
            y = _checked(fn, crop, scale)
            expected = tuple(y.shape[-2:])
            if out is None:
                out = torch.zeros((*y.shape[:2], *out_size), dtype=acc_dtype, device=x.device)
            weight = blend_weights(
                expected,
                start=(top * scale, left * scale),
                image=out_size,
                margin=margin * scale,
                blend=blend * scale,
            ).to(device=x.device, dtype=acc_dtype)
            window = (
                slice(top * scale, top * scale + expected[0]),
                slice(left * scale, left * scale + expected[1]),
            )
            out[(..., *window)] += y.to(acc_dtype) * weight
            total[window] += weight
    return (out / total).to(x.dtype)
