"""Residual wrappers: pre-norm ``x + f(LN(x))`` and res-post-norm ``x + LN(f(x))``.

Around a branch that can run tile by tile (attention, the local FFNs), a wrapper is
:class:`~treeattn.ops.bands.BandWise`: inside a runner's :func:`~treeattn.ops.bands.band_wise`
block the whole residual block runs band-wise; everywhere else it is plain math on the whole map.

``scale`` multiplies the branch (the ``residual_rescale`` init scheme sets it to 0.01). It shapes
the output, so it is a buffer saved with the weights: loading weights restores it, whatever init the
receiving model was built with. A ``state_dict`` holds it only where it differs from 1 (absent
means 1), so the weights of a model at the default scale are its parameters and norms alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from treeattn.layers.drop import DropPath
from treeattn.ops.bands import BandWise, MapFn, bands_wanted

__all__ = ["NORM_WIRINGS", "PostNormResidual", "PreNormResidual", "Residual"]


class Residual(nn.Module, BandWise, ABC):
    """Base of the residual wrappers.

    Args:
        dim: Channels (last axis) for the LayerNorm.
        fn: The branch, channels-last in and out.
        drop_path: Stochastic-depth probability of the branch.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        dim: int,
        fn: nn.Module,
        *,
        drop_path: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, device=device, dtype=dtype)
        self.fn = fn
        self.drop_path = DropPath(drop_path)
        self.register_buffer("scale", torch.ones((), device=device, dtype=dtype))
        # A branch that can run its ``mix`` tile by tile (Hi-IR/Swin attention, the local FFNs).
        self._tile_local = callable(getattr(fn, "in_tiles", None))

    def branch(self, x: torch.Tensor, fn: MapFn | None = None) -> torch.Tensor:
        """The residual branch's output for ``x`` (before scale and drop-path), through ``fn``
        instead of :attr:`fn` when given (band-wise tiles pass its ``mix``)."""
        return self.wire(x, self.fn if fn is None else fn)

    @abstractmethod
    def wire(self, x: torch.Tensor, fn: MapFn) -> torch.Tensor:
        """``fn`` and the norm, wired in this wrapper's order."""

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if not self.scale.is_meta and float(self.scale) == 1.0:  # absent means 1 (see above)
            del destination[prefix + "scale"]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        state_dict.setdefault(prefix + "scale", self.scale.new_ones(()))  # absent means 1
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._tile_local and bands_wanted(self, x.shape[1], x.shape[2]):
            # Only inside a runner's band_wise block. The norm, the scale and the residual add act
            # pixel by pixel, so the whole block runs tile by tile: only its output is a whole
            # map, while the norm's output and the branch's stay tile-sized — fewer passes over,
            # and fresh pages of, maps larger than the cache.
            return self.fn.in_tiles(self._tile_block, x, tile_pixels=self.band_plan.tile_pixels)
        return self._block(x, self.fn)

    def _block(self, x: torch.Tensor, fn: MapFn) -> torch.Tensor:
        return self._add(x, self.branch(x, fn))

    def _tile_block(self, tile: torch.Tensor) -> torch.Tensor:
        """:meth:`_block` on one band-wise tile (inference, no autograd): the same values,
        computed in the branch's fresh output (scale, then the residual) instead of two new
        tiles — unless the sum would take another dtype (autocast: a low-precision branch added
        to a float32 tile), which then goes the plain way."""
        out = self.branch(tile, self.fn.mix)
        if torch.result_type(out, tile) != out.dtype:
            return self._add(tile, out)
        return self.drop_path(out.mul_(self.scale)).add_(tile)

    def _add(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(branch * self.scale)


class PreNormResidual(Residual):
    """``x + f(LN(x))``."""

    def wire(self, x: torch.Tensor, fn: MapFn) -> torch.Tensor:
        return fn(self.norm(x))


class PostNormResidual(Residual):
    """``x + LN(f(x))`` (res-post-norm, as in Swin v2 / GRL)."""

    def wire(self, x: torch.Tensor, fn: MapFn) -> torch.Tensor:
        return self.norm(fn(x))


NORM_WIRINGS: dict[str, type[Residual]] = {"pre": PreNormResidual, "post": PostNormResidual}
