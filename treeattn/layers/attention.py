"""Tree attention (Hi-IR v3/v4) and per-level attention (v1/v2) on channels-last maps.

Every module here takes a ``(B, H, W, C)`` map of any size: it pads to the tree's block (reflect,
replicate when too small), attends, and crops back — large inference maps band by band when a
runner asks for it (:mod:`treeattn.ops.bands`), with exactly the whole-map result.
``shift=True`` offsets the window grid by half the top block (by padding, so no window wraps
around the image).

* :class:`LevelAttend` — attention inside the windows of one level, from q, k, v maps.
* :class:`TreeAttention` (v3; v4 with ``pass_values=True`` and ≥ 3 levels) — one q/k/v projection
  per level with halved q/k, levels in sequence with no projection between them, one output
  projection.
* :class:`LevelAttention` (v1) — full attention at one level: qkv ``C→3C``, output projection.
* :class:`LevelStackAttention` (v2) — full attention per level, a LayerNorm between levels.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from itertools import pairwise

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from treeattn.layers.pos_bias import build_pos_bias
from treeattn.ops.attention import resolve_backend
from treeattn.ops.bands import BandWise, MapFn, apply_on_grid, bands_wanted
from treeattn.ops.padding import crop_to, pad_to_multiple
from treeattn.ops.partition import (
    LevelGeometry,
    PatchSizes,
    TreeSizes,
    level_geometry,
    normalize_patch_sizes,
    tree_partition,
    tree_regroup,
    tree_reverse,
)
from treeattn.validate import check_bool, check_choice, check_int

__all__ = [
    "SIMILARITIES",
    "CosineSimilarity",
    "DotSimilarity",
    "LevelAttend",
    "LevelAttention",
    "LevelStackAttention",
    "TreeAttention",
    "check_heads",
    "check_pass_values_tree",
]


def check_heads(dim: int, num_heads: int, *, name: str = "dim") -> None:
    """Refuse channels or a head count that are not positive, or heads that do not divide them.

    Raises:
        TypeError: if either is not an int.
        ValueError: if either is below 1, or ``dim`` is not a multiple of ``num_heads``.
    """
    check_int(name, dim, minimum=1)
    check_int("num_heads", num_heads, minimum=1)
    if dim % num_heads:
        raise ValueError(
            f"{name}={dim} must be divisible by num_heads={num_heads}; "
            "pick a head count that divides the channels"
        )


def check_pass_values_tree(sizes: TreeSizes) -> None:
    """Refuse a tree too shallow for value pass-through (variant v4), which starts at level 3.

    Raises:
        ValueError: for a tree of fewer than 3 levels.
    """
    if len(sizes) < 3:
        raise ValueError(
            f"variant v4 (pass_values=True) needs a 3-level tree (at least 3 levels), got "
            f"{sizes}; pass e.g. patch_sizes=(8, 32, 128)"
        )


class DotSimilarity(nn.Module):
    """Scaled dot product: logits ``q·kᵀ / √d``."""

    def __init__(self, num_heads: int, head_dim: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.scale = head_dim**-0.5

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        return q, k, self.scale


class CosineSimilarity(nn.Module):
    """Cosine similarity times a learnable per-head logit scale ``exp(min(τ, ln 100))``.

    ``τ`` starts at ``ln 10``. The scale is folded into ``q`` so any kernel can run it.
    """

    def __init__(self, num_heads: int, head_dim: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(
            torch.full((num_heads, 1, 1), math.log(10.0), device=device, dtype=dtype)
        )

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        return F.normalize(q, dim=-1) * scale, F.normalize(k, dim=-1), 1.0


SIMILARITIES: dict[str, type[nn.Module]] = {"dot": DotSimilarity, "cosine": CosineSimilarity}


class LevelAttend(nn.Module):
    """Multi-head attention inside the windows of one tree level.

    Args:
        geometry: The level's windows (:func:`treeattn.ops.partition.level_geometry`).
        num_heads: Heads.
        qk_dim: Channels of q and k (``v`` may differ).
        attn_type: ``dot`` or ``cosine``.
        pos_bias: ``cpb``, ``table`` or ``none``.
        backend: ``auto``, ``sdpa``, ``fused``, ``math`` or ``xformers``.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        geometry: LevelGeometry,
        num_heads: int,
        qk_dim: int,
        *,
        attn_type: str = "dot",
        pos_bias: str = "cpb",
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_heads(qk_dim, num_heads, name="qk_dim")
        check_choice("attn_type", attn_type, SIMILARITIES)
        self.geometry = geometry
        self.num_heads = num_heads
        factory = {"device": device, "dtype": dtype}
        self.similarity = SIMILARITIES[attn_type](num_heads, qk_dim // num_heads, **factory)
        self.pos_bias = build_pos_bias(pos_bias, geometry.group, num_heads, **factory)
        self.kernel = resolve_backend(backend)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attend: ``q, k`` ``(B, H, W, Dqk)``, ``v`` ``(B, H, W, Dv)`` → ``(B, H, W, Dv)``."""
        height, width = v.shape[1], v.shape[2]
        windows = (tree_partition(t, self.geometry, num_heads=self.num_heads) for t in (q, k, v))
        out = self.in_windows(*windows)
        return tree_reverse(out, self.geometry, height=height, width=width)

    def split_heads(self, windows: torch.Tensor) -> torch.Tensor:
        """This level's windows ``(N, T, D)`` → ``(N, heads, T, D/heads)`` (a view)."""
        return rearrange(windows, "n t (h d) -> n h t d", h=self.num_heads)

    def in_windows(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attend inside windows already cut: ``(N, heads, T, D)`` each → ``(N, heads, T, Dv)``."""
        q, k, scale = self.similarity(q, k)
        return self.kernel(q, k, v, self.pos_bias(), scale)

    def extra_repr(self) -> str:
        g = self.geometry
        return f"stride={g.stride}, group={g.group}, num_heads={self.num_heads}"


class _GridAttention(nn.Module, BandWise, ABC):
    """Pads a channels-last map to ``self.multiple`` (optionally shifted), mixes, crops back."""

    multiple: tuple[int, int]
    offset: tuple[int, int]

    def _set_grid(self, block: tuple[int, int], shift: bool) -> None:
        check_bool("shift", shift)
        self.multiple = block
        self.offset = (block[0] // 2, block[1] // 2) if shift else (0, 0)

    @abstractmethod
    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """Attend on a map already padded to ``self.multiple``."""

    def receptive_ops(self, ops, axis: int) -> None:
        """Report the attention levels in the order they run (:mod:`treeattn.layers.receptive`)."""
        levels = [
            (m.geometry.stride[axis], m.geometry.block[axis])
            for m in self.modules()
            if isinstance(m, LevelAttend)
        ]
        ops.windows(levels, self.multiple[axis], self.offset[axis])

    def in_tiles(self, fn: MapFn, x: torch.Tensor, *, tile_pixels: int) -> torch.Tensor:
        """``fn`` — :meth:`mix`, possibly composed with per-pixel maps — run in tiles of about
        ``tile_pixels`` on the padded grid of ``x`` and cropped back: exactly ``fn`` on the whole
        padded map."""
        return apply_on_grid(
            fn, x, multiple=self.multiple, offset=self.offset, tile_pixels=tile_pixels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C)`` of any size → ``(B, H, W, C)`` (band-wise for large inference maps
        inside a runner's :func:`~treeattn.ops.bands.band_wise` block)."""
        if bands_wanted(self, x.shape[1], x.shape[2]):
            return self.in_tiles(self.mix, x, tile_pixels=self.band_plan.tile_pixels)
        padded, size = pad_to_multiple(x, self.multiple, offset=self.offset, data_format="BHWC")
        return crop_to(self.mix(padded), size, offset=self.offset, data_format="BHWC")


class _QKV(nn.Module):
    """One Linear giving q, k (``qk_dim`` each) and v (``dim``)."""

    def __init__(self, dim: int, qk_dim: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.split = (qk_dim, qk_dim, dim)
        self.linear = nn.Linear(dim, 2 * qk_dim + dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.linear(x).split(self.split, dim=-1)


class _QKPassValues(nn.Module):
    """One Linear giving q and k; the values are the input itself (v4's upper levels)."""

    def __init__(self, dim: int, qk_dim: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 2 * qk_dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k = self.linear(x).chunk(2, dim=-1)
        return q, k, x


class _TreeLevel(nn.Module):
    """One tree level: its q/k/v projection and its attention.

    :meth:`forward` runs on a map (the plain definition); :class:`TreeAttention` runs its levels
    on windows instead (:meth:`on_windows`).
    """

    def __init__(self, qkv: nn.Module, attend: LevelAttend) -> None:
        super().__init__()
        self.qkv = qkv
        self.attend = attend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(*self.qkv(x))

    def on_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """The level on its own windows ``(N, T, C)`` → ``(N, heads, T, Dv)``.

        The projection acts token by token, so it gives on the windows what it gives on the map.
        """
        return self.attend.in_windows(*(self.attend.split_heads(t) for t in self.qkv(windows)))


class TreeAttention(_GridAttention):
    """Hi-IR tree attention (variant v3; v4 with ``pass_values=True``).

    Level 1 takes q, k (``C/2`` each) and v (``C``) from one ``Linear C→2C``; its output feeds the
    next level's ``Linear C→2C``, and so on, with no projection between levels; one output
    projection ``C→C`` follows the last level. All heads at every level (q/k head dim ``C/2h``,
    v head dim ``C/h``).

    Args:
        dim: Channels ``C``.
        num_heads: Heads at every level.
        patch_sizes: Cumulative block size per level, e.g. ``(16, 64)``; depth = its length.
        attn_type: ``dot`` or ``cosine``.
        pos_bias: ``cpb``, ``table`` or ``none`` (one per level).
        shift: Offset the window grid by half the top block.
        pass_values: v4 — levels from the third on project only q and k and attend over the
            previous level's output directly.
        backend: Attention backend (``auto``, ``sdpa``, ``fused``, ``math``, ``xformers``).
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        patch_sizes: PatchSizes = (16, 64),
        *,
        attn_type: str = "dot",
        pos_bias: str = "cpb",
        shift: bool = False,
        pass_values: bool = False,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_heads(dim, num_heads)
        if dim % 2 or (dim // 2) % num_heads:
            raise ValueError(
                f"tree attention halves q/k: {dim=} must be even and dim/2 divisible by "
                f"{num_heads=}"
            )
        sizes = normalize_patch_sizes(patch_sizes)
        if check_bool("pass_values", pass_values):
            check_pass_values_tree(sizes)
        factory = {"device": device, "dtype": dtype}
        levels = []
        for index in range(len(sizes)):
            qkv_cls = _QKPassValues if pass_values and index >= 2 else _QKV
            attend = LevelAttend(
                level_geometry(sizes, index),
                num_heads,
                dim // 2,
                attn_type=attn_type,
                pos_bias=pos_bias,
                backend=backend,
                **factory,
            )
            levels.append(_TreeLevel(qkv_cls(dim, dim // 2, **factory), attend))
        self.levels = nn.ModuleList(levels)
        self.proj = nn.Linear(dim, dim, **factory)
        self._set_grid(sizes[-1], shift)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """The levels window to window: the map is cut into the first level's windows once (before
        the projection: one copy of ``C`` channels rather than of q, k and v), and each level's
        output goes from its windows straight into the next level's (:func:`tree_regroup`, one
        copy) — the same values as running every level on the map (:meth:`_TreeLevel.forward`).
        """
        height, width = x.shape[1], x.shape[2]
        first = self.levels[0]
        out = first.on_windows(tree_partition(x, first.attend.geometry))
        for previous, level in pairwise(self.levels):
            windows = tree_regroup(
                out, previous.attend.geometry, level.attend.geometry, height=height, width=width
            )
            out = level.on_windows(windows)
        last = self.levels[-1].attend.geometry
        return self.proj(tree_reverse(out, last, height=height, width=width))


class LevelAttention(_GridAttention):
    """Full attention at one tree level (v1 layers; the pieces of v2).

    Args:
        dim: Channels ``C``.
        num_heads: Heads.
        patch_sizes: The tree; this module attends at ``level`` only.
        level: 0-based tree level.
        attn_type: ``dot`` or ``cosine``.
        pos_bias: ``cpb``, ``table`` or ``none``.
        shift: Offset the window grid by half the level's block.
        backend: Attention backend.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        patch_sizes: PatchSizes = (16, 64),
        *,
        level: int = 0,
        attn_type: str = "dot",
        pos_bias: str = "cpb",
        shift: bool = False,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_heads(dim, num_heads)
        geometry = level_geometry(patch_sizes, level)
        factory = {"device": device, "dtype": dtype}
        self.qkv = _QKV(dim, dim, **factory)
        self.attend = LevelAttend(
            geometry,
            num_heads,
            dim,
            attn_type=attn_type,
            pos_bias=pos_bias,
            backend=backend,
            **factory,
        )
        self.proj = nn.Linear(dim, dim, **factory)
        self._set_grid(geometry.block, shift)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.attend(*self.qkv(x)))


class LevelStackAttention(_GridAttention):
    """v2: full attention at each level in turn, with a LayerNorm between levels.

    Args: as :class:`LevelAttention`, without ``level``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        patch_sizes: PatchSizes = (16, 64),
        *,
        attn_type: str = "dot",
        pos_bias: str = "cpb",
        shift: bool = False,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        sizes = normalize_patch_sizes(patch_sizes)
        factory = {"device": device, "dtype": dtype}
        blocks: list[nn.Module] = []
        for index in range(len(sizes)):
            if index:
                blocks.append(nn.LayerNorm(dim, **factory))
            blocks.append(
                LevelAttention(
                    dim,
                    num_heads,
                    sizes,
                    level=index,
                    attn_type=attn_type,
                    pos_bias=pos_bias,
                    backend=backend,
                    **factory,
                )
            )
        self.blocks = nn.Sequential(*blocks)
        self._set_grid(sizes[-1], shift)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)
