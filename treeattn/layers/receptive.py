"""How a module moves information along one image axis, told by the module itself.

Receptive-field analysis (:mod:`treeattn.analysis.receptive_field`) builds, per axis, the list of
operations a model applies; it asks the modules for them instead of restating the architecture,
so the two cannot drift apart. :func:`describe_axis` walks a module: a module that mixes pixels
in its own way (tree attention, the models' data flow) defines ``receptive_ops(ops, axis)``;
convolutions and pixel (un)shuffles are recognised; any other module is walked through its
children in the order they were registered (for the blocks here, the order they run in).
Norms, activations and linear layers act per pixel and add nothing.
"""

from __future__ import annotations

from typing import Protocol

from torch import nn

__all__ = ["AxisOps", "describe_axis"]


class AxisOps(Protocol):
    """What modules report to (implemented by ``treeattn.analysis.dependency.AxisBuilder``)."""

    def conv(self, kernel: int) -> None:
        """A ``kernel``-wide convolution, zero-padded to the same length."""

    def windows(self, levels: list[tuple[int, int]], multiple: int, offset: int) -> None:
        """Attention at ``(stride, block)`` levels, grid padded to ``multiple`` at ``offset``."""

    def up(self, factor: int) -> None:
        """Pixel shuffle by ``factor``."""

    def down(self, factor: int) -> None:
        """Pixel unshuffle by ``factor``."""

    def pad_to(self, multiple: int) -> int:
        """Pad the end to a multiple of ``multiple``; returns the length before padding."""

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions."""

    def branch(self) -> AxisOps:
        """A new sequence of operations starting from the current positions."""

    def union(self, branches: list[AxisOps]) -> None:
        """Concatenate the outputs of ``branches`` (channel-wise: the union of their sets)."""


def describe_axis(module: nn.Module, ops: AxisOps, axis: int) -> None:
    """Report the operations of ``module`` along ``axis`` (0 = height, 1 = width) to ``ops``.

    Raises:
        ValueError: for a convolution this walk cannot describe (strided or dilated).
    """
    own = getattr(module, "receptive_ops", None)
    if own is not None:
        own(ops, axis)
    elif isinstance(module, nn.Conv2d):
        if module.stride[axis] != 1 or module.dilation[axis] != 1:
            raise ValueError(f"cannot describe the strided or dilated convolution {module}")
        ops.conv(module.kernel_size[axis])
    elif isinstance(module, nn.PixelShuffle):
        ops.up(module.upscale_factor)
    elif isinstance(module, nn.PixelUnshuffle):
        ops.down(module.downscale_factor)
    else:
        for child in module.children():
            describe_axis(child, ops, axis)
