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

Band-wise execution is a runner's explicit choice, never a hidden global: a module that can run
its map band-wise (a :class:`BandWise` module: the attention and FFN branches and the residual
blocks around them) does so only while :func:`band_wise` has installed settings on it — the
restore runner (:mod:`treeattn.inference.runner`) and
:func:`~treeattn.models.banded.banded_forward` enter that block. Outside it ``model(x)`` is plain
math on whole maps. Inside it, :func:`bands_wanted` decides per call: only for inference (module
in eval mode, no autograd), outside ``torch.compile``, when the map has at least ``min_pixels``
pixels and does not fit in one tile. Tiles themselves run whole: a band-wise tile runs the
branch's ``mix``, never a :class:`BandWise` module's ``forward``. :func:`band_execution` sets the
settings runners use when they are not given any (threshold, tile size, or bands off).

``BAND_MIN_PIXELS`` and ``BAND_TILE_PIXELS`` were read off ``benchmarks/band_bench.py`` on a quiet
2-core machine (see ``docs/performance.md``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

import torch
from torch import nn

from treeattn.ops.memo import pass_cache
from treeattn.ops.padding import pad_amount, padded_index
from treeattn.validate import check_bool, check_int

__all__ = [
    "BAND_MIN_PIXELS",
    "BAND_TILE_PIXELS",
    "BandSettings",
    "BandWise",
    "MapFn",
    "apply_on_grid",
    "apply_with_halo",
    "band_execution",
    "band_settings",
    "band_wise",
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

    def wants(self, height: int, width: int) -> bool:
        """Whether a ``height × width`` map runs band-wise under these settings."""
        pixels = height * width
        return self.enabled and pixels >= self.min_pixels and pixels > self.tile_pixels


_DEFAULT_SETTINGS: Final[BandSettings] = BandSettings()
_SETTINGS: ContextVar[BandSettings] = ContextVar(
    "treeattn_band_settings", default=_DEFAULT_SETTINGS
)


def band_settings() -> BandSettings:
    """The settings runners use here when they are given none (see :func:`band_execution`)."""
    return _SETTINGS.get()


@contextmanager
def band_execution(
    *,
    enabled: bool = True,
    min_pixels: int | None = None,
    tile_pixels: int | None = None,
) -> Iterator[BandSettings]:
    """Change the band settings that runners use inside the ``with`` block.

    The restore runner (:func:`treeattn.restore_image`, ``treeattn restore``, the engine's
    validation) and :func:`~treeattn.models.banded.banded_forward` read them when they start;
    ``model(x)`` itself never runs band-wise.

    Args:
        enabled: ``False`` runs every map whole.
        min_pixels: Smallest map that runs band-wise (``0``: every map larger than a tile);
            unchanged when ``None``.
        tile_pixels: Target pixels per tile; unchanged when ``None``.

    Yields:
        The settings in force inside the block.

    Example:
        >>> with band_execution(min_pixels=0, tile_pixels=64 * 64):
        ...     y = restore_image(model, x)  # doctest: +SKIP
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


class BandWise:
    """Mixin of a module with a band-wise path, which runs only where a runner switched it on.

    Attributes:
        band_plan: The settings :func:`band_wise` installed on this module for the duration of
            its block; ``None`` (the class default) outside any: whole maps.
    """

    band_plan: BandSettings | None = None


@contextmanager
def band_wise(model: nn.Module, settings: BandSettings | None = None) -> Iterator[BandSettings]:
    """Let the :class:`BandWise` modules of ``model`` run band-wise inside the ``with`` block.

    The explicit switch of band-wise execution: it installs ``settings`` on every
    :class:`BandWise` submodule and takes them off when the block ends (whatever happens inside).
    Like :meth:`torch.nn.Module.eval`, it changes the model object for the block, so one model
    should not be run band-wise and plainly by two threads at once.

    Args:
        model: Any module; its :class:`BandWise` submodules (itself included) take part.
        settings: When and how to run band-wise; ``None``: :func:`band_settings`.

    Yields:
        The settings installed.
    """
    settings = band_settings() if settings is None else settings
    modules = [m for m in model.modules() if isinstance(m, BandWise)]
    before = [m.band_plan for m in modules]
    try:
        for module in modules:
            module.band_plan = settings
        yield settings
    finally:
        for module, plan in zip(modules, before, strict=True):
            module.band_plan = plan


def bands_wanted(module: nn.Module, height: int, width: int) -> bool:
    """Whether ``module`` runs band-wise on a ``height × width`` map right now: only inside a
    :func:`band_wise` block of its model, in inference (eval mode, no autograd, not compiled)."""
    # Compiled graphs run whole maps (checked first: nothing else here is traced).
    if torch.compiler.is_compiling() or module.training or torch.is_grad_enabled():
        return False
    plan = getattr(module, "band_plan", None)
    return plan is not None and plan.wants(height, width)


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


@dataclass(frozen=True)
class _Span:
    """One tile along one axis: what to read from the map and where its kept part lands.

    Attributes:
        read: Map positions read for the tile (a view, no copy).
        gather: Positions inside ``read`` in tile order when they are not one plain run (the
            reflected or replicated border of a padded grid); ``None`` for a plain run.
        keep: The tile's positions that are kept (tile coordinates).
        dest: Where those land in the output (map coordinates).
    """

    read: slice
    gather: tuple[int, ...] | None
    keep: slice
    dest: slice


@functools.lru_cache(maxsize=512)
def _grid_spans(size: int, block: int, offset: int, tile: int) -> tuple[_Span, ...]:
    """Tiles of ``tile`` padded positions along an axis padded as :func:`padded_index` pads it."""
    index = padded_index(size, block, offset=offset).tolist()
    spans = []
    for start in range(0, len(index), tile):
        sources = index[start : start + tile]
        low, high = min(sources), max(sources) + 1
        plain = sources == list(range(low, high))
        # Padded positions [start, start + tile) that are map positions, in map coordinates.
        first, last = max(start, offset) - offset, min(start + tile, offset + size) - offset
        spans.append(
            _Span(
                read=slice(low, high),
                gather=None if plain else tuple(s - low for s in sources),
                keep=slice(first + offset - start, last + offset - start),
                dest=slice(first, last),
            )
        )
    return tuple(spans)


@functools.lru_cache(maxsize=512)
def _halo_spans(size: int, tile: int, reach: int) -> tuple[_Span, ...]:
    """Tiles of ``tile`` positions along an axis, each read with ``reach`` positions around it."""
    spans = []
    for start in range(0, size, tile):
        stop = min(start + tile, size)
        low, high = max(start - reach, 0), min(stop + reach, size)
        spans.append(
            _Span(
                read=slice(low, high),
                gather=None,
                keep=slice(start - low, stop - low),
                dest=slice(start, stop),
            )
        )
    return tuple(spans)


def _run_tiles(
    fn: MapFn, x: torch.Tensor, rows: tuple[_Span, ...], cols: tuple[_Span, ...]
) -> torch.Tensor:
    """``fn`` on every (row span × column span) tile of ``x``, kept parts written into one map."""
    gathers: dict[tuple[int, ...], torch.Tensor] = {}

    def take(tile: torch.Tensor, axis: int, span: _Span) -> torch.Tensor:
        if span.gather is None:
            return tile
        if span.gather not in gathers:
            gathers[span.gather] = torch.tensor(span.gather, device=x.device)
        return tile.index_select(axis, gathers[span.gather])

    out = None
    # Input-independent values (position biases) are computed once for all the tiles.
    with pass_cache():
        for r in rows:
            band = x[:, r.read]
            for c in cols:
                y = fn(take(take(band[:, :, c.read], 1, r), 2, c))
                if out is None:
                    out = y.new_empty((x.shape[0], x.shape[1], x.shape[2], y.shape[-1]))
                out[:, r.dest, c.dest] = y[:, r.keep, c.keep]
    return out


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
        tile_pixels: Target pixels per tile; :func:`band_settings`' when ``None``.

    Returns:
        ``(B, H, W, C')``.
    """
    _, height, width, _ = x.shape
    (bh, bw), (oh, ow) = multiple, offset
    padded = (height + oh + pad_amount(height, bh, oh), width + ow + pad_amount(width, bw, ow))
    target = band_settings().tile_pixels if tile_pixels is None else tile_pixels
    th, tw = tile_shape(*padded, (bh, bw), target)
    return _run_tiles(fn, x, _grid_spans(height, bh, oh, th), _grid_spans(width, bw, ow, tw))


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
        tile_pixels: Target pixels per tile; :func:`band_settings`' when ``None``.

    Returns:
        ``(B, H, W, C')``.
    """
    if reach < 0:
        raise ValueError(f"{reach=} must be >= 0 (the operator's receptive-field radius)")
    _, height, width, _ = x.shape
    target = band_settings().tile_pixels if tile_pixels is None else tile_pixels
    th, tw = tile_shape(height, width, (1, 1), target)
    return _run_tiles(fn, x, _halo_spans(height, th, reach), _halo_spans(width, tw, reach))
