"""Bayer mosaicking and Malvar-He-Cutler demosaicking (MATLAB ``demosaic``'s algorithm) in torch.

Malvar, He and Cutler (2004) interpolate the missing colours bilinearly and add a scaled Laplacian
of the known channel ("gradient correction"); each case is one fixed 5x5 filter on the mosaic.
Borders use symmetric padding (edge sample repeated), as ``colour-demosaicing`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import pack, unpack
from torch import Tensor

__all__ = ["BAYER_PATTERNS", "bayer_masks", "demosaic_malvar", "mosaic"]

# (row, column) of the red and of the blue sample inside the 2x2 tile.
BAYER_PATTERNS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "RGGB": ((0, 0), (1, 1)),
    "BGGR": ((1, 1), (0, 0)),
    "GRBG": ((0, 1), (1, 0)),
    "GBRG": ((1, 0), (0, 1)),
}

# Filters of the paper, times 8: green at red/blue; red/blue at green with the known colour left
# and right ("row") or above and below ("column"); red at blue and blue at red.
_FILTERS = (
    torch.tensor(
        [
            [
                [0, 0, -1, 0, 0],
                [0, 0, 2, 0, 0],
                [-1, 2, 4, 2, -1],
                [0, 0, 2, 0, 0],
                [0, 0, -1, 0, 0],
            ],
            [
                [0, 0, 0.5, 0, 0],
                [0, -1, 0, -1, 0],
                [-1, 4, 5, 4, -1],
                [0, -1, 0, -1, 0],
                [0, 0, 0.5, 0, 0],
            ],
            [
                [0, 0, -1, 0, 0],
                [0, -1, 4, -1, 0],
                [0.5, 0, 5, 0, 0.5],
                [0, -1, 4, -1, 0],
                [0, 0, -1, 0, 0],
            ],
            [
                [0, 0, -1.5, 0, 0],
                [0, 2, 0, 2, 0],
                [-1.5, 0, 6, 0, -1.5],
                [0, 2, 0, 2, 0],
                [0, 0, -1.5, 0, 0],
            ],
        ],
        dtype=torch.float64,
    )
    / 8.0
)


def bayer_masks(
    height: int, width: int, pattern: str, *, device: torch.device | str | None = None
) -> Tensor:
    """Boolean ``(3, H, W)`` masks telling where R, G and B are sampled."""
    if pattern not in BAYER_PATTERNS:
        raise ValueError(
            f"{pattern=} is not a Bayer pattern; choose one of {tuple(BAYER_PATTERNS)}"
        )
    (r_row, r_col), (b_row, b_col) = BAYER_PATTERNS[pattern]
    rows = torch.arange(height, device=device)[:, None] % 2
    cols = torch.arange(width, device=device)[None, :] % 2
    red = (rows == r_row) & (cols == r_col)
    blue = (rows == b_row) & (cols == b_col)
    return torch.stack([red, ~(red | blue), blue])


def mosaic(img: Tensor, *, pattern: str = "RGGB") -> Tensor:
    """Sample an RGB ``(..., 3, H, W)`` image on a Bayer grid; returns ``(..., 1, H, W)``."""
    if img.shape[-3] != 3:
        raise ValueError(f"mosaicking needs RGB input, got {img.shape[-3]} channels")
    masks = bayer_masks(*img.shape[-2:], pattern, device=img.device)
    return (img * masks).sum(dim=-3, keepdim=True)


def _pad_symmetric(x: Tensor, pad: int) -> Tensor:
    """Pad the last two axes by mirroring with the edge sample repeated (``d c b a | a b c d``)."""
    for axis in (-2, -1):
        n = x.shape[axis]
        idx = torch.arange(-pad, n + pad, device=x.device) % (2 * n)
        idx = torch.where(idx < n, idx, 2 * n - 1 - idx)
        x = x.index_select(axis, idx)
    return x


def demosaic_malvar(cfa: Tensor, *, pattern: str = "RGGB") -> Tensor:
    """Malvar-He-Cutler demosaicking of a ``(..., 1, H, W)`` mosaic to ``(..., 3, H, W)``.

    The result is not clamped; it has the dtype of ``cfa`` (computed in float64).
    """
    if cfa.shape[-3] != 1:
        raise ValueError(f"the mosaic must have 1 channel, got {cfa.shape[-3]}")
    flat, packed_shape = pack([cfa.to(torch.float64)], "* c h w")
    h, w = flat.shape[-2:]
    filtered = F.conv2d(_pad_symmetric(flat, 2), _FILTERS.to(cfa.device).unsqueeze(1))
    g_at_rb, along_row, along_col, across = filtered.unbind(dim=1)
    red, green, blue = bayer_masks(h, w, pattern, device=cfa.device)
    # a green sample in a red row has red left and right of it and blue above and below
    in_red_row = red.any(dim=1, keepdim=True)
    value = flat[:, 0]
    g = torch.where(green, value, g_at_rb)
    r = torch.where(
        red, value, torch.where(blue, across, torch.where(in_red_row, along_row, along_col))
    )
    b = torch.where(
        blue, value, torch.where(red, across, torch.where(in_red_row, along_col, along_row))
    )
    (out,) = unpack(torch.stack([r, g, b], dim=1), packed_shape, "* c h w")
    return out.to(cfa.dtype)
