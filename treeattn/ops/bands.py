"""Exact band-wise (tile-wise) execution of local operators on large channels-last maps.

A Hi-IR layer mixes pixels in two local ways: attention only inside the top-level blocks of its
(padded, possibly shifted) window grid, and the FFN's depthwise 3×3 convolution, which reaches
one pixel. Each can therefore run on a large map a few blocks at a time — rows of top-level
blocks, split along the width when the map is wide — and give exactly the whole-map result,
while its intermediates (q/k/v, attention maps, the FFN's hidden channels) stay cache-sized:

* :func:`apply_on_grid` — for block-local operators: every tile is a rectangle of whole blocks
  of the padded grid, gathered with :func:`~treeattn.ops.padding.padded_index`, so the padding
  (reflect/replicate, leading shift offset) is exactly the whole-map padding.
* :func:`apply_with_halo` — for operators of a small reach with zero padding at the border (a
  3×3 convolution reaches 1): every tile is read with a halo of ``reach`` pixels and only its
  interior is kept.

Whether a module runs band-wise is decided per call by :func:`bands_wanted`: only for inference
(module in eval mode, no autograd), outside ``torch.compile``, when the map has at least
``min_pixels`` pixels and does not fit in one tile. :func:`band_execution` changes the threshold
and tile size for a block of code (or switches bands off); tiles themselves always run whole.

``BAND_MIN_PIXELS`` and ``BAND_TILE_PIXELS`` were read off ``benchmarks/band_bench.py`` on a quiet
2-core machine (see ``docs/performance.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

import torch
from torch import nn

from treeattn.ops.padding import padded_index
from treeattn.validate import check_bool, check_int

__all__ = [
    "BAND_MIN_PIXELS",
    "BAND_TILE_PIXELS",
    "BandSettings",
    "MapFn",
    "apply_on_grid",
    "apply_with_halo",
    "band_execution",
    "band_settings",
    "bands_wanted",
    "tile_shape",
]

# Measured with benchmarks/band_bench.py on a quiet 2-core Xeon, 2 threads, ABBA in one process.
# Tiles of one 64² block were the cheapest: HiIRLayer(180, 6, (16, 64)) inference took 0.96 /
# 0.88 / 0.77 / 0.66 / 0.68 of the whole-map time at 128² / 192² / 256² / 384² / 512² (128² tiles:
# 0.96 / 0.77 / 0.73 / 0.91 at 192²–512²); the whole hiir_b_sr_x2 took 1.10 / 0.79 / 0.77 at LR
# 128² / 192² / 256² (128² tiles: 0.84 at 256²). So maps of 192² or more run band-wise, in tiles
# of about 64² pixels.
BAND_MIN_PIXELS: Final[int] = 192 * 192
BAND_TILE_PIXELS: Final[int] = 64 * 64

Size2 = tuple[int, int]
MapFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BandSettings:
    """When and how band-wise execution runs.

    Attributes:
        enabled: Run band-wise at all (inference only, whatever this says).
        min_pixels: Smallest map (``H·W``) that runs band-wise.
        tile_pixels: Target pixels per tile (at least one block is always taken).
    """

    enabled: bool = True
    min_pixels: int = BAND_MIN_PIXELS
    tile_pixels: int = BAND_TILE_PIXELS

    def __post_init__(self) -> None:
        check_bool("enabled", self.enabled)
        check_int("min_pixels", self.min_pixels)
        check_int("tile_pixels", self.tile_pixels)
        if self.min_pixels < 0:
            raise ValueError(f"min_pixels={self.min_pixels} must be >= 0 (0 bands every map)")
        if self.tile_pixels < 1:
            raise ValueError(f"tile_pixels={self.tile_pixels} must be >= 1, e.g. 128 * 128")


_DEFAULT_SETTINGS: Final[BandSettings] = BandSettings()
_SETTINGS: ContextVar[BandSettings] = ContextVar(
    "treeattn_band_settings", default=_DEFAULT_SETTINGS
)


def band_settings() -> BandSettings:
    """The band settings in force here."""
    return _SETTINGS.get()


@contextmanager
def band_execution(
    *,
    enabled: bool = True,
    min_pixels: int | None = None,
    tile_pixels: int | None = None,
) -> Iterator[BandSettings]:
    """Change band-wise execution for the code inside the ``with`` block.

    Args:
        enabled: ``False`` runs every map whole.
        min_pixels: Smallest map that runs band-wise (``0``: every map larger than a tile);
            unchanged when ``None``.
        tile_pixels: Target pixels per tile; unchanged when ``None``.

    Yields:
        The settings in force inside the block.

    Example:
        >>> with torch.no_grad(), band_execution(min_pixels=0, tile_pixels=64 * 64):
        ...     y = model.eval()(x)  # doctest: +SKIP
    """
    current = _SETTINGS.get()
    settings = BandSettings(
        enabled=enabled,
        min_pixels=current.min_pixels if min_pixels is None else min_pixels,
        tile_pixels=current.tile_pixels if tile_pixels is None else tile_pixels,
    )
    token = _SETTINGS.set(settings)
    try:
        yield settings
    finally:
        _SETTINGS.reset(token)


def bands_wanted(module: nn.Module, height: int, width: int) -> bool:
    """Whether ``module`` should run band-wise on a ``height × width`` map right now."""
    # Compiled graphs run whole maps (checked first: nothing else here is traced).
    if torch.compiler.is_compiling() or module.training or torch.is_grad_enabled():
        return False
    settings = _SETTINGS.get()
    pixels = height * width
    return settings.enabled and pixels >= settings.min_pixels and pixels > settings.tile_pixels


def tile_shape(height: int, width: int, block: Size2, target: int) -> Size2:
    """A tile of whole blocks of about ``target`` pixels, square-ish, inside ``height × width``.

    Args:
        height: Map height (a multiple of ``block[0]`` for block grids).
        width: Map width.
        block: The unit a tile is made of ``(bh, bw)``; ``(1, 1)`` for halo tiles.
        target: Pixels wanted per tile.

    Returns:
        ``(tile_h, tile_w)``: multiples of the block, at least one block, at most the map.
    """
    bh, bw = block
    side = math.isqrt(target)
    cols = min(max(1, round(side / bw)), max(1, -(-width // bw)))
    rows = min(max(1, target // (cols * bw * bh)), max(1, -(-height // bh)))
    return rows * bh, cols * bw


def _starts(length: int, tile: int) -> range:
    return range(0, length, tile)


def apply_on_grid(
    fn: MapFn,
    x: torch.Tensor,
    *,
    multiple: Size2,
    offset: Size2 = (0, 0),
    tile_pixels: int | None = None,
) -> torch.Tensor:
    """Run a block-local ``fn`` tile by tile on the padded grid of ``x`` and crop back.

    Equals ``crop_to(fn(pad_to_multiple(x, multiple, offset=offset)), ...)`` whenever ``fn`` mixes
    pixels only inside the aligned ``multiple`` blocks of its input.

    Args:
        fn: ``(B, h, w, C) → (B, h, w, C')`` on maps whose size is a multiple of ``multiple``.
        x: Channels-last map ``(B, H, W, C)`` of any size.
        multiple: Block size of the grid ``(bh, bw)``.
        offset: Leading pad ``(top, left)`` of a shifted grid.
        tile_pixels: Target pixels per tile; the current settings' when ``None``.

    Returns:
        ``(B, H, W, C')``.
    """
    _, height, width, _ = x.shape
    (bh, bw), (oh, ow) = multiple, offset
    rows = padded_index(height, bh, offset=oh, device=x.device)
    cols = padded_index(width, bw, offset=ow, device=x.device)
    target = _SETTINGS.get().tile_pixels if tile_pixels is None else tile_pixels
    th, tw = tile_shape(rows.numel(), cols.numel(), (bh, bw), target)
    out = None
    with band_execution(enabled=False):
        for r0 in _starts(rows.numel(), th):
            band = x.index_select(1, rows[r0 : r0 + th])
            # Padded rows [r0, r0 + th) that are image rows, in image coordinates.
            top, bottom = max(r0, oh) - oh, min(r0 + th, oh + height) - oh
            for c0 in _starts(cols.numel(), tw):
                y = fn(band.index_select(2, cols[c0 : c0 + tw]))
                left, right = max(c0, ow) - ow, min(c0 + tw, ow + width) - ow
                if out is None:
                    out = y.new_empty((x.shape[0], height, width, y.shape[-1]))
                out[:, top:bottom, left:right] = y[
                    :, top + oh - r0 : bottom + oh - r0, left + ow - c0 : right + ow - c0
                ]
    return out


def apply_with_halo(
    fn: MapFn,
    x: torch.Tensor,
    *,
    reach: int,
    tile_pixels: int | None = None,
) -> torch.Tensor:
    """Run ``fn`` tile by tile, each tile read with a ``reach``-pixel halo, keeping interiors.

    Equals ``fn(x)`` whenever an output pixel of ``fn`` depends only on inputs at most ``reach``
    pixels away and ``fn`` pads its border with zeros (as ``Conv2d(padding=reach)`` does).

    Args:
        fn: ``(B, h, w, C) → (B, h, w, C')`` for any size.
        x: Channels-last map ``(B, H, W, C)``.
        reach: Receptive-field radius of ``fn`` (1 for a 3×3 convolution, 0 for pointwise).
        tile_pixels: Target pixels per tile; the current settings' when ``None``.

    Returns:
        ``(B, H, W, C')``.
    """
    if reach < 0:
        raise ValueError(f"{reach=} must be >= 0 (the operator's receptive-field radius)")
    _, height, width, _ = x.shape
    target = _SETTINGS.get().tile_pixels if tile_pixels is None else tile_pixels
    th, tw = tile_shape(height, width, (1, 1), target)
    out = None
    with band_execution(enabled=False):
        for r0 in _starts(height, th):
            r1, a0, a1 = min(r0 + th, height), max(r0 - reach, 0), min(r0 + th + reach, height)
            for c0 in _starts(width, tw):
                c1, b0, b1 = min(c0 + tw, width), max(c0 - reach, 0), min(c0 + tw + reach, width)
                y = fn(x[:, a0:a1, b0:b1])
                if out is None:
                    out = y.new_empty((x.shape[0], height, width, y.shape[-1]))
                out[:, r0:r1, c0:c1] = y[:, r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
    return out
