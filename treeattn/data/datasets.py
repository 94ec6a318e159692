"""Torch datasets for restoration: clean folder + on-the-fly degradation, paired and dual-pixel.

Every item is ``{"lq": Tensor(C, h, w), "gt": Tensor(C, h', w'), "name": str}`` (float32 in
[0, 1]; ``lq`` may leave [0, 1] after noise). Conventions shared by all datasets:

* ``patch_size`` is the side of the **low-quality** patch; the ground-truth patch is
  ``patch_size * scale``. ``patch_size=None`` returns whole images (evaluation).
* Ground truth is mod-cropped (bottom/right) to a multiple of ``scale``.
* Images smaller than the patch are **padded** at the bottom/right (reflect, replicate when too
  small to reflect) with a :class:`UserWarning` naming the file — never silently dropped.
* All randomness of item ``index`` (crop, flips/rotation, degradation parameters and noise) comes
  from one generator seeded by ``(seed, epoch, index)``; call :meth:`set_epoch` every epoch, and
  a resumed run replays exactly. (DataLoader workers copy the dataset: keep the default
  ``persistent_workers=False`` so that they see the new epoch.)
* ``repeat`` lists every image ``repeat`` times per epoch (each copy with its own randomness).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from treeattn.data.degradations import Degradation
from treeattn.data.io import list_images
from treeattn.data.seeded import SeededFolder
from treeattn.data.transforms import augment

__all__ = ["DegradedFolder", "DualPixelFolder", "PairedFolder"]

_MAX_LISTED = 10


class DegradedFolder(SeededFolder):
    """Clean images from one folder, degraded on the fly.

    Args:
        root: Folder of clean images (PNG/TIFF/BMP/JPEG, 8 or 16 bit).
        degradation: Callable ``(gt, generator) -> lq`` (see :mod:`treeattn.data.degradations`);
            for SR use ``BicubicDown(scale=scale)``.
        patch_size: LQ patch side for training; ``None`` for whole images.
        scale: SR factor (ground-truth patch = ``patch_size * scale``); 1 otherwise.
        augment: Random flips and 90-degree rotations.
        channels: ``None`` keeps each file's channels, 1 or 3 converts.
        gray_method: Colour-to-gray convention, see :mod:`treeattn.data.io`.
        seed: Base seed of the per-item generators.
        repeat: How many times each image appears per epoch.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        degradation: Degradation,
        patch_size: int | None = None,
        scale: int = 1,
        augment: bool = False,
        channels: int | None = None,
        gray_method: str = "luma",
        seed: int = 0,
        repeat: int = 1,
    ) -> None:
        if not callable(degradation):
            raise ValueError(f"{degradation=} must be callable as degradation(img, generator)")
        self.files = list_images(root)
        self.degradation = degradation
        super().__init__(
            num_images=len(self.files),
            patch_size=patch_size,
            scale=scale,
            augment=augment,
            channels=channels,
            gray_method=gray_method,
            seed=seed,
            repeat=repeat,
            first=self.files[0],
        )

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        generator = self._generator(index)
        path = self.files[index % self.num_images]
        gt = self._read_gt(path)
        if self.patch_size is not None:
            _, gt = self._crop([], gt, path.name, generator)
        if self.augment:
            (gt,) = augment([gt], generator)
        lq = self.degradation(gt, generator)
        return {"lq": lq.float(), "gt": gt, "name": path.stem}


def _match_by_stem(
    gt_dir: str | Path, lq_dirs: Sequence[str | Path], lq_suffix: str
) -> list[tuple[list[Path], Path]]:
    """Pair each ground-truth file with the file of the same stem (+ suffix) in every LQ folder."""

    def by_stem(folder: str | Path, suffix: str) -> dict[str, Path]:
        table: dict[str, Path] = {}
        for path in list_images(folder):
            if suffix and not path.stem.endswith(suffix):
                table[f"{path.name} (no {suffix!r} ending)"] = path
                continue
            key = path.stem[: len(path.stem) - len(suffix)]
            if key in table:
                raise ValueError(
                    f"folder {str(folder)!r} holds two images with stem {key!r} "
                    f"({table[key].name}, {path.name}); keep one"
                )
            table[key] = path
        return table

    gts = by_stem(gt_dir, "")
    tables = [by_stem(folder, lq_suffix) for folder in lq_dirs]
    for folder, table in zip(lq_dirs, tables, strict=True):
        missing = sorted(set(gts) - set(table))
        extra = sorted(set(table) - set(gts))
        if missing or extra:
            raise ValueError(
                f"folders {str(folder)!r} and {str(gt_dir)!r} do not match by file name "
                f"(with {lq_suffix=}): {len(missing)} ground truths without input "
                f"{missing[:_MAX_LISTED]}, {len(extra)} inputs without ground truth "
                f"{extra[:_MAX_LISTED]}; rename or remove those files"
            )
    return [([table[stem] for table in tables], gts[stem]) for stem in sorted(gts)]


class _MatchedFolders(SeededFolder):
    """Ground truth + one or more LQ folders matched by file stem; LQ views are concatenated."""

    def __init__(
        self,
        lq_dirs: Sequence[str | Path],
        gt_dir: str | Path,
        *,
        patch_size: int | None,
        scale: int,
        augment: bool,
        channels: int | None,
        gray_method: str,
        seed: int,
        repeat: int,
        lq_suffix: str,
    ) -> None:
        self.pairs = _match_by_stem(gt_dir, lq_dirs, lq_suffix)
        super().__init__(
            num_images=len(self.pairs),
            patch_size=patch_size,
            scale=scale,
            augment=augment,
            channels=channels,
            gray_method=gray_method,
            seed=seed,
            repeat=repeat,
            first=self.pairs[0][1],
        )

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        generator = self._generator(index)
        lq_paths, gt_path = self.pairs[index % self.num_images]
        gt = self._read_gt(gt_path)
        lqs = [self._read(path) for path in lq_paths]
        for path, lq in zip(lq_paths, lqs, strict=True):
            if lq.shape[0] != gt.shape[0]:
                raise ValueError(
                    f"{str(path)!r} has {lq.shape[0]} channel(s) but its ground truth "
                    f"{str(gt_path)!r} has {gt.shape[0]}; pass channels=1 or channels=3 to "
                    "convert both, or fix the pair"
                )
            expected = (gt.shape[-2] // self.scale, gt.shape[-1] // self.scale)
            if tuple(lq.shape[-2:]) != expected:
                raise ValueError(
                    f"{str(path)!r} is {tuple(lq.shape[-2:])} but its ground truth "
                    f"{str(gt_path)!r} (mod-cropped, {tuple(gt.shape[-2:])}) needs {expected} "
                    f"at scale={self.scale}; fix the pair or the scale"
                )
        if self.patch_size is not None:
            lqs, gt = self._crop(lqs, gt, gt_path.name, generator)
        if self.augment:
            *lqs, gt = augment([*lqs, gt], generator)
        return {"lq": torch.cat(lqs, dim=0), "gt": gt, "name": gt_path.stem}


class PairedFolder(_MatchedFolders):
    """Degraded/ground-truth pairs from two folders, matched by file stem.

    Args:
        lq_dir: Folder of degraded inputs.
        gt_dir: Folder of ground truths; every stem must appear in both folders (mismatches are
            listed in the error).
        patch_size: LQ patch side for training; ``None`` for whole images.
        scale: SR factor; LQ size must equal the mod-cropped ground-truth size / scale.
        augment: Random flips and 90-degree rotations (same for both).
        channels: ``None`` keeps each file's channels, 1 or 3 converts.
        gray_method: Colour-to-gray convention, see :mod:`treeattn.data.io`.
        seed: Base seed of the per-item generators.
        repeat: How many times each pair appears per epoch.
        lq_suffix: Extra stem ending of the LQ files (e.g. ``"x4"`` for ``babyx4.png``).
    """

    def __init__(
        self,
        lq_dir: str | Path,
        gt_dir: str | Path,
        *,
        patch_size: int | None = None,
        scale: int = 1,
        augment: bool = False,
        channels: int | None = None,
        gray_method: str = "luma",
        seed: int = 0,
        repeat: int = 1,
        lq_suffix: str = "",
    ) -> None:
        super().__init__(
            [lq_dir],
            gt_dir,
            patch_size=patch_size,
            scale=scale,
            augment=augment,
            channels=channels,
            gray_method=gray_method,
            seed=seed,
            repeat=repeat,
            lq_suffix=lq_suffix,
        )


class DualPixelFolder(_MatchedFolders):
    """Dual-pixel defocus triplets: left and right views (6-channel ``lq``) and the sharp image.

    Files are typically 16-bit PNG (DPDD); they are read at full depth.

    Args:
        left_dir: Folder of left views.
        right_dir: Folder of right views.
        gt_dir: Folder of sharp ground truths (stems matched across the three folders).
        patch_size: Patch side for training; ``None`` for whole images.
        augment: Random flips and 90-degree rotations (same for all three).
        seed: Base seed of the per-item generators.
        repeat: How many times each triplet appears per epoch.
    """

    def __init__(
        self,
        left_dir: str | Path,
        right_dir: str | Path,
        gt_dir: str | Path,
        *,
        patch_size: int | None = None,
        augment: bool = False,
        seed: int = 0,
        repeat: int = 1,
    ) -> None:
        super().__init__(
            [left_dir, right_dir],
            gt_dir,
            patch_size=patch_size,
            scale=1,
            augment=augment,
            channels=3,
            gray_method="luma",
            seed=seed,
            repeat=repeat,
            lq_suffix="",
        )
