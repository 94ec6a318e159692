"""Synthetic degraded/clean pairs for the quick default of the paired tasks.

Deblurring, defocus and weather removal train on paired folders that are too large to ship. So
that their recipes still run end to end with no arguments, :func:`make_pairs` writes a small
paired set made from clean images: ``lq/`` (or ``lq_left/`` + ``lq_right/``) and ``gt/``. The
pairs are deterministic in ``seed``. They show that the pipeline works; they are not a benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from einops import rearrange
from torch.nn import functional as F

from treeattn.data.io import list_images, read_image, write_image

__all__ = ["SYNTHETIC", "blur", "dual_pixel_views", "make_pairs", "motion_kernel", "rain"]


def motion_kernel(generator: torch.Generator, *, size: int = 9) -> torch.Tensor:
    """A normalised linear motion-blur kernel ``(size, size)`` of random length and angle."""
    angle = float(torch.rand((), generator=generator)) * math.pi
    length = 3 + float(torch.rand((), generator=generator)) * (size - 3)
    coords = torch.arange(size, dtype=torch.float32) - size // 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    along = xx * math.cos(angle) + yy * math.sin(angle)
    across = -xx * math.sin(angle) + yy * math.cos(angle)
    kernel = ((across.abs() < 0.5) & (along.abs() <= length / 2)).float()
    return kernel / kernel.sum()


def _disk(radius: float, *, half: float = 0.0) -> torch.Tensor:
    """Disk kernel; ``half`` = -1 / +1 keeps only the left / right half (dual-pixel views)."""
    size = 2 * math.ceil(radius) + 1
    coords = torch.arange(size, dtype=torch.float32) - size // 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    kernel = (xx.square() + yy.square() <= radius**2).float()
    if half:
        kernel = kernel * (xx * half >= 0).float()
    return kernel / kernel.sum()


def blur(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel of ``(C, H, W)`` with ``kernel`` (replicate borders)."""
    pad = kernel.shape[-1] // 2
    x = rearrange(img, "c h w -> c 1 h w")
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    return rearrange(F.conv2d(x, rearrange(kernel, "h w -> 1 1 h w")), "c 1 h w -> c h w")


def dual_pixel_views(img: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Left and right dual-pixel views of a defocused image (half-disk blurs)."""
    return blur(img, _disk(radius, half=-1.0)), blur(img, _disk(radius, half=1.0))


def rain(img: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Add slanted rain streaks and a light haze to ``(C, H, W)``."""
    _, height, width = img.shape
    drops = (torch.rand((1, height, width), generator=generator) < 0.01).float()
    streaks = blur(drops, motion_kernel(generator, size=11)) * 4
    haze = 0.1 + 0.15 * float(torch.rand((), generator=generator))
    return ((img * (1 - haze) + haze * 0.8) + streaks).clamp(0, 1)


def _motion(img: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    return [blur(img, motion_kernel(generator))]


def _defocus_radius(generator: torch.Generator) -> float:
    return 1.5 + 2.5 * float(torch.rand((), generator=generator))


def _defocus(img: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    return [blur(img, _disk(_defocus_radius(generator)))]


def _dual_pixel(img: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    return list(dual_pixel_views(img, _defocus_radius(generator)))


def _rain(img: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    return [rain(img, generator)]


SYNTHETIC: dict[str, Callable[[torch.Tensor, torch.Generator], list[torch.Tensor]]] = {
    "motion_blur": _motion,
    "defocus": _defocus,
    "dual_pixel": _dual_pixel,
    "rain": _rain,
}


def make_pairs(
    kind: str, source: str | Path, out_dir: str | Path, *, channels: int, seed: int
) -> tuple[list[Path], Path]:
    """Write synthetic pairs made from the clean images in ``source``.

    Args:
        kind: A key of :data:`SYNTHETIC`.
        source: Folder of clean images.
        out_dir: Destination; a complete set made with the same settings is reused.
        channels: 1 (gray) or 3 (RGB).
        seed: Seed of the degradation parameters.

    Returns:
        ``(lq_dirs, gt_dir)``: one degraded folder per input view, and the clean folder.

    Raises:
        ValueError: For an unknown kind.
    """
    if kind not in SYNTHETIC:
        raise ValueError(f"unknown synthetic pair kind {kind!r}; choose one of {sorted(SYNTHETIC)}")
    out_dir = Path(out_dir)
    images = list_images(source)
    probe = SYNTHETIC[kind](torch.zeros(channels, 8, 8), torch.Generator().manual_seed(0))
    names = ["lq"] if len(probe) == 1 else [f"lq_{view}" for view in ("left", "right")]
    lq_dirs, gt_dir = [out_dir / name for name in names], out_dir / "gt"
    done = out_dir / "COMPLETE"
    signature = f"{kind} seed={seed} channels={channels} images={len(images)}\n"
    if done.is_file() and done.read_text() == signature:
        return lq_dirs, gt_dir
    done.unlink(missing_ok=True)
    for folder in [*lq_dirs, gt_dir]:
        folder.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(images):
        gt = read_image(path, channels=channels)
        views = SYNTHETIC[kind](gt, torch.Generator().manual_seed(seed * 100_003 + index))
        for folder, view in zip(lq_dirs, views, strict=True):
            write_image(folder / f"{path.stem}.png", view)
        write_image(gt_dir / f"{path.stem}.png", gt)
    done.write_text(signature)
    return lq_dirs, gt_dir
