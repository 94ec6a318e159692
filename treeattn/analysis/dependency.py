"""One-axis dependency algebra: which input positions each output position can depend on.

Every spatial operation of the Hi-IR models is separable: a k×k conv, an aligned window or tree
level (with reflect/replicate padding), pixel-(un)shuffle and cropping each act on rows and
columns independently, so the 2-D dependency set of a pixel is the product of two 1-D sets. An op
here maps a boolean mask over its *output* positions back to the mask of *input* positions they
depend on (a batch of masks, shape ``(K, length)``), exactly — padding included.

:class:`AxisBuilder` records the ops of a network along one axis while tracking the length of the
map and how many input pixels one position spans, so it also knows the alignment period.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from fractions import Fraction

import numpy as np
from einops import reduce, repeat

from treeattn.ops.padding import pad_amount

__all__ = ["AxisBuilder", "AxisOp"]

Mask = np.ndarray  # (K, length) bool


class AxisOp(ABC):
    """One op along an axis: ``back`` maps output-position masks to input-position masks."""

    @abstractmethod
    def back(self, mask: Mask) -> Mask:
        """Input positions each output-position mask depends on."""


class _Conv(AxisOp):
    def __init__(self, kernel: int) -> None:
        self.reach = kernel // 2

    def back(self, mask: Mask) -> Mask:
        out = mask.copy()
        for step in range(1, self.reach + 1):
            out[:, step:] |= mask[:, :-step]
            out[:, :-step] |= mask[:, step:]
        return out


class _Pad(AxisOp):
    """``before`` leading and ``after`` trailing positions, reflect (replicate if too short)."""

    def __init__(self, length: int, before: int, after: int) -> None:
        self.length, self.before = length, before
        index = np.arange(-before, length + after)
        if max(before, after) < length:  # same rule as treeattn.ops.padding
            index = np.abs(index)
            index = np.where(index >= length, 2 * (length - 1) - index, index)
        self.source = np.clip(index, 0, length - 1)

    def back(self, mask: Mask) -> Mask:
        out = mask[:, self.before : self.before + self.length].copy()
        border = np.r_[0 : self.before, self.before + self.length : mask.shape[1]]
        for position in border:
            out[:, self.source[position]] |= mask[:, position]
        return out


class _Crop(AxisOp):
    def __init__(self, length_in: int, start: int, length: int) -> None:
        self.length_in, self.start, self.length = length_in, start, length

    def back(self, mask: Mask) -> Mask:
        out = np.zeros((mask.shape[0], self.length_in), dtype=bool)
        out[:, self.start : self.start + self.length] = mask
        return out


class _Groups(AxisOp):
    """Windows of one tree level: tokens at ``stride`` inside aligned blocks of ``block``."""

    def __init__(self, stride: int, block: int) -> None:
        self.stride, self.block = stride, block

    def back(self, mask: Mask) -> Mask:
        axes = {"g": self.block // self.stride, "s": self.stride}
        hit = reduce(mask, "k (n g s) -> k n s", "any", **axes)
        return repeat(hit, "k n s -> k (n g s)", **axes)


class _Down(AxisOp):
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def back(self, mask: Mask) -> Mask:
        return repeat(mask, "k n -> k (n f)", f=self.factor)


class _Up(AxisOp):
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def back(self, mask: Mask) -> Mask:
        return reduce(mask, "k (n f) -> k n", "any", f=self.factor)


class _Union(AxisOp):
    def __init__(self, branches: list[AxisBuilder]) -> None:
        self.branches = branches

    def back(self, mask: Mask) -> Mask:
        masks = [branch.back(mask) for branch in self.branches]
        return np.logical_or.reduce(masks)


class AxisBuilder:
    """Records a network's ops along one axis for a map of ``length`` input pixels.

    Attributes:
        length: Current map length (positions).
        span: Input pixels per position at the current resolution (a fraction after upsampling).
        period: Input-pixel period of the alignment of every op so far (windows, down-sampling).
    """

    def __init__(self, length: int, *, span: Fraction = Fraction(1), period: int = 1) -> None:
        self.length, self.span, self.period = length, span, period
        self.ops: list[AxisOp] = []

    def _align(self, positions: int) -> None:
        pixels = self.span * positions
        self.period = math.lcm(self.period, pixels.numerator)

    def conv(self, kernel: int) -> None:
        """A ``kernel``-wide convolution with zero padding (same length)."""
        if kernel > 1:
            self.ops.append(_Conv(kernel))

    def windows(self, levels: list[tuple[int, int]], multiple: int, offset: int) -> None:
        """Pad to ``multiple`` with ``offset`` leading positions, attend at ``levels``, crop back.

        Args:
            levels: ``(stride, block)`` of each attention level, in the order they run.
            multiple: The padding multiple (the module's top block).
            offset: Leading positions padded before the grid (a shifted grid).
        """
        length = self.length
        after = pad_amount(length, multiple, offset)
        if offset or after:
            self.ops.append(_Pad(length, offset, after))
        self.length = offset + length + after
        for stride, block in levels:
            self.ops.append(_Groups(stride, block))
        self._align(multiple)
        if offset or after:
            self.crop(length, start=offset)

    def pad_to(self, multiple: int) -> int:
        """Pad the trailing end to a multiple; returns the original length."""
        length = self.length
        after = pad_amount(length, multiple)
        if after:
            self.ops.append(_Pad(length, 0, after))
            self.length += after
        return length

    def crop(self, length: int, *, start: int = 0) -> None:
        """Keep ``length`` positions from ``start``."""
        if start or length != self.length:
            self.ops.append(_Crop(self.length, start, length))
            self.length = length

    def down(self, factor: int) -> None:
        """Pixel-unshuffle by ``factor``."""
        self._align(factor)
        self.ops.append(_Down(factor))
        self.length //= factor
        self.span *= factor

    def up(self, factor: int) -> None:
        """Pixel-shuffle by ``factor``."""
        self.ops.append(_Up(factor))
        self.length *= factor
        self.span /= factor

    def branch(self) -> AxisBuilder:
        """A new builder that starts where this one is (for :meth:`union`)."""
        return AxisBuilder(self.length, span=self.span, period=self.period)

    def union(self, branches: list[AxisBuilder]) -> None:
        """Join branches that started here and end at the same length (skip connections)."""
        if len({b.length for b in branches}) != 1:
            raise ValueError("branches of a union must end at the same length")
        self.ops.append(_Union(branches))
        self.length = branches[0].length
        self.span = branches[0].span
        self.period = math.lcm(self.period, *(b.period for b in branches))

    def back(self, mask: Mask) -> Mask:
        """Input-position masks of a batch of output-position masks ``(K, length)``."""
        for op in reversed(self.ops):
            mask = op.back(mask)
        return mask
