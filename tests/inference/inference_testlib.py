"""Helpers of the inference tests: tiny seeded models and random image files."""

from __future__ import annotations

from pathlib import Path

import torch

from treeattn.models import RestorationModel, create_model

# Three-level U-shape with tiny trees (multiple_of 4) and a one-layer ×2 columnar model.
UNET = {
    "dims": (4, 8, 16),
    "depths": (1, 1, 1),
    "decoder_depths": (1, 1),
    "num_heads": (1, 1, 1),
    "patch_sizes": ((2, 4), (2, 4), (2, 4)),
}
SR = {"dim": 8, "depths": (1,), "num_heads": 2, "patch_sizes": (2, 4), "upsampler_dim": 8}


def tiny_denoiser(channels: int = 1, **overrides) -> RestorationModel:
    """A randomly initialised tiny U-shape denoiser (seeded)."""
    torch.manual_seed(0)
    settings = {"in_chans": channels, "out_chans": channels, "task": "denoise", **overrides}
    return create_model("hiir_unet_tiny", **UNET, **settings).eval()


def tiny_sr(**overrides) -> RestorationModel:
    """A randomly initialised tiny ×2 super-resolution model (seeded)."""
    torch.manual_seed(0)
    return create_model("hiir_sr_tiny_x2", **SR, **overrides).eval()


def write_random(path: Path, *, channels: int = 1, size=(13, 18), bit_depth: int = 8) -> Path:
    """Write a seeded random image file and return its path."""
    from treeattn.data.io import write_image

    generator = torch.Generator().manual_seed(len(path.name))
    write_image(path, torch.rand(channels, *size, generator=generator), bit_depth=bit_depth)
    return path
