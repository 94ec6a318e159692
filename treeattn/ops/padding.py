"""Padding to the multiple a tree (or a model) needs, and cropping back.

Padding is bottom/right (plus an optional leading offset, used for shifted grids) with ``reflect``,
falling back to ``replicate`` along an axis where the image is too small to reflect.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from treeattn.validate import check_int

__all__ = ["crop_to", "pad_amount", "pad_to_multiple", "padded_index"]

_FORMATS = ("BCHW", "BHWC")


def _pair(value: int | tuple[int, int], *, name: str) -> tuple[int, int]:
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name}={value!r} must be a non-negative int or (h, w) pair")
    return tuple(check_int(name, v, minimum=0) for v in pair)


def _check_format(data_format: str) -> None:
    if data_format not in _FORMATS:
        raise ValueError(f"{data_format=} must be one of {_FORMATS}")


def pad_amount(size: int, multiple: int, offset: int = 0) -> int:
    """Trailing pad that brings ``offset + size`` up to a multiple of ``multiple``."""
    return (-(size + offset)) % multiple


def _pad_mode(size: int, before: int, after: int) -> str:
    """``reflect`` where the axis is long enough to mirror the pad, else ``replicate``."""
    return "reflect" if max(before, after) < size else "replicate"


def _pad_axis(x: torch.Tensor, before: int, after: int, *, axis: int) -> torch.Tensor:
    """Pad one spatial axis (2 = H, 3 = W) of a BCHW tensor, reflect or replicate."""
    if before == 0 and after == 0:
        return x
    pads = (before, after, 0, 0) if axis == 3 else (0, 0, before, after)
    return F.pad(x, pads, mode=_pad_mode(x.shape[axis], before, after))


def padded_index(
    size: int, multiple: int, *, offset: int = 0, device: torch.device | None = None
) -> torch.Tensor:
    """Source position of every entry of one axis padded as :func:`pad_to_multiple` pads it.

    ``x.index_select(axis, padded_index(...))`` equals the padded axis, so any slice of a padded
    map can be gathered without padding the whole map (band-wise execution).

    Args:
        size: Length of the axis before padding.
        multiple: The multiple the padded length must reach.
        offset: Leading positions padded before the axis (a shifted grid).
        device: Device of the returned index.

    Returns:
        A ``long`` tensor of length ``offset + size + pad_amount(size, multiple, offset)``.
    """
    after = pad_amount(size, multiple, offset)
    index = torch.arange(-offset, size + after, device=device)
    if _pad_mode(size, offset, after) == "replicate":
        return index.clamp(0, size - 1)
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def pad_to_multiple(
    x: torch.Tensor,
    multiple: int | tuple[int, int],
    *,
    offset: int | tuple[int, int] = 0,
    data_format: str = "BCHW",
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a batch so that its spatial size is a multiple of ``multiple``.

    Args:
        x: ``(B, C, H, W)`` or ``(B, H, W, C)`` tensor.
        multiple: Required multiple, an int or ``(mh, mw)``.
        offset: Extra leading rows/columns (top/left) to add before padding to the multiple;
            used to shift a window grid without wrap-around.
        data_format: ``"BCHW"`` or ``"BHWC"``.

    Returns:
        The padded tensor (same format) and the original ``(H, W)``, for :func:`crop_to`.
    """
    _check_format(data_format)
    mh, mw = _pair(multiple, name="multiple")
    oh, ow = _pair(offset, name="offset")
    if mh < 1 or mw < 1:
        raise ValueError(f"{multiple=} must be positive")
    spatial = x.shape[1:3] if data_format == "BHWC" else x.shape[2:4]
    height, width = int(spatial[0]), int(spatial[1])
    ph, pw = pad_amount(height, mh, oh), pad_amount(width, mw, ow)
    if ph == 0 and pw == 0 and oh == 0 and ow == 0:
        return x, (height, width)
    y = rearrange(x, "b h w c -> b c h w") if data_format == "BHWC" else x
    y = _pad_axis(_pad_axis(y, oh, ph, axis=2), ow, pw, axis=3)
    if data_format == "BHWC":
        y = rearrange(y, "b c h w -> b h w c")
    return y, (height, width)


def crop_to(
    x: torch.Tensor,
    size: tuple[int, int],
    *,
    offset: int | tuple[int, int] = 0,
    data_format: str = "BCHW",
) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: keep ``size`` rows/columns starting at ``offset``."""
    _check_format(data_format)
    oh, ow = _pair(offset, name="offset")
    height, width = size
    if data_format == "BHWC":
        return x[:, oh : oh + height, ow : ow + width, :]
    return x[:, :, oh : oh + height, ow : ow + width]
