"""Tree partition ops: the windows of each tree level, and their exact inverses.

A tree is given as per-level *cumulative* block sizes, e.g. ``(16, 64)``: level 0 attends inside
aligned 16×16 patches, level 1 among the pixels at stride 16 inside aligned 64×64 regions. In
general level ``k`` groups the tokens at stride ``s[k-1]`` (``s[-1] = 1``) inside aligned blocks of
size ``s[k]``; each window holds ``(s[k] / s[k-1])²`` tokens.

All functions here are pure (no parameters, no state). Feature maps are channels-last
``(B, H, W, C)`` with ``H`` and ``W`` multiples of the level's block size (see
:mod:`treeattn.ops.padding` to get there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange

__all__ = [
    "LevelGeometry",
    "PatchSizes",
    "TreeSizes",
    "level_geometry",
    "normalize_patch_sizes",
    "tree_partition",
    "tree_regroup",
    "tree_reverse",
]

Size2 = tuple[int, int]
PatchSizes = int | Size2 | Sequence[int | Size2]

# One level's windows: tokens at stride (p1, p2) inside blocks of (g1·p1, g2·p2); a window is the
# g1×g2 grid of tokens sharing one offset (p1, p2) inside one block (n1, n2).
_TO_WINDOWS = "b (n1 g1 p1) (n2 g2 p2) c -> (b n1 n2 p1 p2) (g1 g2) c"
_FROM_WINDOWS = "(b n1 n2 p1 p2) (g1 g2) c -> b (n1 g1 p1) (n2 g2 p2) c"
_TO_HEADS = "b (n1 g1 p1) (n2 g2 p2) (h d) -> (b n1 n2 p1 p2) h (g1 g2) d"
_FROM_HEADS = "(b n1 n2 p1 p2) h (g1 g2) d -> b (n1 g1 p1) (n2 g2 p2) (h d)"
# From one level's windows (with heads) straight to the next level's (heads merged): the next
# level's blocks (m1, m2) hold g1×g2 of this level's blocks, and its stride is this level's block
# (s1 p1)×(s2 p2), this level's group being s1×s2.
_TO_NEXT_LEVEL = "(b m1 g1 m2 g2 p1 p2) h (s1 s2) d -> (b m1 m2 s1 p1 s2 p2) (g1 g2) (h d)"


def _as_pair(size: int | Size2, *, name: str) -> Size2:
    if isinstance(size, int) and not isinstance(size, bool):
        pair = (size, size)
    elif (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        pair = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"{name}={size!r} must be an int or an (h, w) pair of ints")
    if min(pair) < 1:
        raise ValueError(f"{name}={size!r} must be positive")
    return pair


class TreeSizes(tuple):
    """A validated tree: one ``(h, w)`` block size per level, smallest first.

    Only :func:`normalize_patch_sizes` makes these; passing one back to it returns it unchanged,
    so a tree is validated once where it enters and never again by the modules it is passed to.
    """

    __slots__ = ()


def normalize_patch_sizes(patch_sizes: PatchSizes) -> TreeSizes:
    """Validate a tree description and return it as a tuple of ``(h, w)`` block sizes.

    Args:
        patch_sizes: One cumulative block size per level, each a square int or an ``(h, w)``
            pair; a bare int means a one-level tree. Each level's size must divide the next and
            grow in at least one dimension.

    Returns:
        The block sizes, one ``(h, w)`` pair per level, smallest first (a :class:`TreeSizes`,
        returned unchanged when passed in again).

    Raises:
        ValueError: if the sizes are empty, non-positive, or do not nest.
    """
    if isinstance(patch_sizes, TreeSizes):
        return patch_sizes
    if isinstance(patch_sizes, int) and not isinstance(patch_sizes, bool):
        patch_sizes = (patch_sizes,)
    if not isinstance(patch_sizes, Sequence) or len(patch_sizes) == 0:
        raise ValueError(
            f"{patch_sizes=} must be a non-empty sequence of per-level block sizes, "
            "e.g. (16, 64) or ((8, 16), (32, 64))"
        )
    sizes = tuple(_as_pair(s, name=f"patch_sizes[{i}]") for i, s in enumerate(patch_sizes))
    for i in range(1, len(sizes)):
        (ph, pw), (sh, sw) = sizes[i - 1], sizes[i]
        if sh % ph or sw % pw or (sh, sw) == (ph, pw):
            raise ValueError(
                f"{patch_sizes=}: level {i} size {sizes[i]} must be a larger multiple of level "
                f"{i - 1} size {sizes[i - 1]} (each level's block must tile the next), "
                "e.g. (16, 64)"
            )
    return TreeSizes(sizes)


@dataclass(frozen=True)
class LevelGeometry:
    """Where one tree level's windows sit.

    Attributes:
        stride: Spacing ``(p1, p2)`` between the tokens of one window (the previous level's block).
        group: Tokens per window along each axis ``(g1, g2)``.
        block: The aligned block a window lives in, ``stride * group``.
    """

    stride: Size2
    group: Size2

    @property
    def block(self) -> Size2:
        return (self.stride[0] * self.group[0], self.stride[1] * self.group[1])

    @property
    def tokens(self) -> int:
        """Number of tokens in one window."""
        return self.group[0] * self.group[1]

    def axes(self) -> dict[str, int]:
        return {
            "p1": self.stride[0],
            "p2": self.stride[1],
            "g1": self.group[0],
            "g2": self.group[1],
        }


def level_geometry(patch_sizes: PatchSizes, level: int) -> LevelGeometry:
    """Return the window geometry of tree level ``level`` (0-based)."""
    sizes = normalize_patch_sizes(patch_sizes)
    if not 0 <= level < len(sizes):
        raise ValueError(f"{level=} is outside the tree of depth {len(sizes)} ({sizes})")
    stride = sizes[level - 1] if level > 0 else (1, 1)
    block = sizes[level]
    return LevelGeometry(stride=stride, group=(block[0] // stride[0], block[1] // stride[1]))


def _check_aligned(height: int, width: int, geometry: LevelGeometry) -> None:
    bh, bw = geometry.block
    if height % bh or width % bw:
        raise ValueError(
            f"feature map {height}×{width} is not a multiple of the level block {bh}×{bw}; "
            "pad it first with treeattn.ops.padding.pad_to_multiple"
        )


def tree_partition(
    x: torch.Tensor, geometry: LevelGeometry, *, num_heads: int | None = None
) -> torch.Tensor:
    """Split a ``(B, H, W, C)`` map into the windows of one tree level.

    Args:
        x: Channels-last feature map, ``H`` and ``W`` multiples of ``geometry.block``.
        geometry: The level, from :func:`level_geometry`.
        num_heads: If given, also split channels into heads.

    Returns:
        ``(B·windows, tokens, C)``, or ``(B·windows, heads, tokens, C / heads)`` with heads.
    """
    _check_aligned(x.shape[1], x.shape[2], geometry)
    if num_heads is None:
        return rearrange(x, _TO_WINDOWS, **geometry.axes())
    return rearrange(x, _TO_HEADS, h=num_heads, **geometry.axes())


def tree_reverse(
    windows: torch.Tensor, geometry: LevelGeometry, *, height: int, width: int
) -> torch.Tensor:
    """Inverse of :func:`tree_partition`: windows (with or without a heads axis) back to a map.

    Args:
        windows: ``(B·windows, tokens, C)`` or ``(B·windows, heads, tokens, D)``.
        geometry: The level the windows were cut for.
        height: Height of the map they came from.
        width: Width of the map they came from.

    Returns:
        The ``(B, H, W, C)`` map (``C = heads·D`` for the head form).
    """
    _check_aligned(height, width, geometry)
    bh, bw = geometry.block
    blocks = {"n1": height // bh, "n2": width // bw}
    pattern = _FROM_WINDOWS if windows.dim() == 3 else _FROM_HEADS
    return rearrange(windows, pattern, **blocks, **geometry.axes())


def tree_regroup(
    windows: torch.Tensor,
    geometry: LevelGeometry,
    target: LevelGeometry,
    *,
    height: int,
    width: int,
) -> torch.Tensor:
    """Windows (with heads) of one level straight into the windows of the next: one copy.

    Equals ``tree_partition(tree_reverse(windows, geometry, ...), target)``, without the map in
    between.

    Args:
        windows: ``(B·windows, heads, tokens, D)`` of ``geometry``.
        geometry: The level the windows were cut for.
        target: The next level: its stride must be ``geometry``'s block.
        height: Height of the map they came from (a multiple of ``target.block[0]``).
        width: Width of the map they came from.

    Returns:
        ``(B·windows', tokens', heads·D)``, the windows of ``target`` (heads merged).
    """
    if target.stride != geometry.block:
        raise ValueError(
            f"target level stride {target.stride} must be the block {geometry.block} of the "
            "level the windows were cut for (consecutive tree levels)"
        )
    _check_aligned(height, width, target)
    bh, bw = target.block
    axes = {"m1": height // bh, "m2": width // bw, "g1": target.group[0], "g2": target.group[1]}
    axes |= {"p1": geometry.stride[0], "p2": geometry.stride[1]}
    axes |= {"s1": geometry.group[0], "s2": geometry.group[1]}
    return rearrange(windows, _TO_NEXT_LEVEL, **axes)
