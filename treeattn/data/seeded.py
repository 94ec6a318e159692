"""The shared base of the folder datasets: options, ``repeat``, epochs, seeded crops.

See :mod:`treeattn.data.datasets` for the conventions (patch size on the low-quality side,
mod-crop, padding of small images, generators seeded by ``(seed, epoch, index)``).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from treeattn.data.io import GRAY_METHODS, read_image
from treeattn.data.transforms import mod_crop, pad_to_min, random_offset, sample_generator
from treeattn.validate import check_bool, check_choice, check_int

__all__ = ["SeededFolder"]


class SeededFolder(Dataset):
    """Base class: options, length with ``repeat``, epoch and per-item generators and crops."""

    def __init__(
        self,
        *,
        num_images: int,
        patch_size: int | None,
        scale: int,
        augment: bool,
        channels: int | None,
        gray_method: str,
        seed: int,
        repeat: int,
        first: Path,
    ) -> None:
        """``first`` is the first ground-truth file: with ``channels=None`` every file must have
        its channel count, so that a batch never mixes gray and colour images."""
        self._file_channels = None  # set below, once the options are checked
        if patch_size is not None and check_int("patch_size", patch_size) < 1:
            raise ValueError(f"{patch_size=} must be a positive integer or None (whole images)")
        check_int("scale", scale, minimum=1)
        check_int("repeat", repeat, minimum=1)
        check_int("seed", seed)
        check_bool("augment", augment)
        if channels is not None and check_int("channels", channels) not in (1, 3):
            raise ValueError(f"{channels=} must be None, 1 or 3")
        check_choice("gray_method", gray_method, GRAY_METHODS)
        self.num_images = num_images
        self.patch_size, self.scale, self.augment = patch_size, int(scale), augment
        self.channels, self.gray_method = channels, gray_method
        self.seed, self.repeat, self.epoch = seed, repeat, 0
        self._first = first
        self._file_channels = None if channels else self._read(first).shape[0]

    def __len__(self) -> int:
        return self.num_images * self.repeat

    def with_patch_size(self, patch_size: int) -> SeededFolder:
        """A copy of this dataset (same files, seed and options) that crops ``patch_size``.

        Raises:
            ValueError: If ``patch_size`` is not a positive integer.
        """
        if check_int("patch_size", patch_size) < 1:
            raise ValueError(f"{patch_size=} must be a positive integer")
        clone = copy.copy(self)
        clone.patch_size = patch_size
        return clone

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops and degradations ``__getitem__`` returns."""
        if epoch < 0:
            raise ValueError(f"{epoch=} must be >= 0")
        self.epoch = epoch

    def _generator(self, index: int) -> torch.Generator:
        if not 0 <= index < len(self):
            raise IndexError(f"{index=} out of range for a dataset of {len(self)} items")
        return sample_generator(self.seed, self.epoch, index)

    def _read(self, path: Path) -> Tensor:
        img = read_image(path, channels=self.channels, gray_method=self.gray_method)
        if self._file_channels is not None and img.shape[0] != self._file_channels:
            raise ValueError(
                f"{str(path)!r} has {img.shape[0]} channel(s) but {str(self._first)!r} has "
                f"{self._file_channels}: a batch cannot mix gray and colour images; pass "
                "channels=1 or channels=3 to convert every file"
            )
        return img

    def _read_gt(self, path: Path) -> Tensor:
        """A ground truth, mod-cropped to a multiple of ``scale``."""
        try:
            return mod_crop(self._read(path), self.scale)
        except ValueError as error:
            raise ValueError(f"{str(path)!r}: {error}") from None

    def _crop(
        self, lqs: list[Tensor], gt: Tensor, name: str, generator: torch.Generator
    ) -> tuple[list[Tensor], Tensor]:
        """Pad if needed, then cut aligned random patches (lq side ``p``, gt side ``p * scale``)."""
        p, s = self.patch_size, self.scale
        h, w = gt.shape[-2:]
        if h < p * s or w < p * s:
            warnings.warn(
                f"image {name!r} ({h}x{w}) is smaller than the {p * s}x{p * s} patch; "
                "padding it at the bottom/right (reflect, or replicate when too small)",
                stacklevel=3,
            )
            gt = pad_to_min(gt, p * s, p * s)
            lqs = [pad_to_min(lq, p, p) for lq in lqs]
        if not lqs:  # the degradation comes later: cut the ground truth alone
            top, left = random_offset(*gt.shape[-2:], p * s, generator)
            return [], gt[:, top : top + p * s, left : left + p * s]
        top, left = random_offset(*lqs[0].shape[-2:], p, generator)
        lqs = [lq[:, top : top + p, left : left + p] for lq in lqs]
        gt = gt[:, top * s : (top + p) * s, left * s : (left + p) * s]
        return lqs, gt
