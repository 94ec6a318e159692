"""Per-sample helpers shared by the datasets: seeding, mod-crop, padding, crops, augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["augment", "mod_crop", "pad_to_min", "random_offset", "sample_generator"]


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator determined only by ``(seed, epoch, index)``.

    The three integers are mixed with NumPy's ``SeedSequence`` so that nearby tuples give
    unrelated streams; a resumed run that revisits (epoch, index) draws exactly the same numbers.
    """
    if min(seed, epoch, index) < 0:
        raise ValueError(f"{seed=}, {epoch=} and {index=} must be >= 0")
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def mod_crop(img: Tensor, scale: int) -> Tensor:
    """Crop the bottom/right of ``(..., H, W)`` so that H and W are multiples of ``scale``.

    Raises:
        ValueError: if the image is smaller than ``scale`` (nothing would be left).
    """
    h, w = img.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(
            f"a {h}x{w} image is smaller than {scale=}: mod-cropping it leaves nothing; use "
            "images of at least scale x scale pixels"
        )
    return img[..., : h - h % scale, : w - w % scale]


def pad_to_min(img: Tensor, height: int, width: int) -> Tensor:
    """Pad bottom/right of ``(C, H, W)`` up to at least ``height x width``.

    Reflect padding, falling back to replicate when the image is too small to reflect.
    """
    h, w = img.shape[-2:]
    pad_h, pad_w = max(height - h, 0), max(width - w, 0)
    if pad_h == 0 and pad_w == 0:
        return img
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(img.unsqueeze(0), (0, pad_w, 0, pad_h), mode=mode).squeeze(0)


def random_offset(
    height: int, width: int, size: int, generator: torch.Generator
) -> tuple[int, int]:
    """Uniform top-left corner of a ``size x size`` window inside ``height x width``."""
    if size > height or size > width:
        raise ValueError(f"patch {size=} does not fit in a {height}x{width} image")
    top = int(torch.randint(0, height - size + 1, (), generator=generator))
    left = int(torch.randint(0, width - size + 1, (), generator=generator))
    return top, left


def augment(tensors: list[Tensor], generator: torch.Generator) -> list[Tensor]:
    """Apply one random element of the 8 flips/rotations (the same to every tensor).

    Draws a horizontal flip, a vertical flip and a 90-degree rotation, each with probability 1/2.
    """
    hflip, vflip, rot = (bool(b) for b in torch.randint(0, 2, (3,), generator=generator))
    out = []
    for t in tensors:
        if hflip:
            t = t.flip(-1)
        if vflip:
            t = t.flip(-2)
        if rot:
            t = t.rot90(1, dims=(-2, -1))
        out.append(t.contiguous())
    return out
