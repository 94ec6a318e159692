"""Rebuild the embedded default data from the benchmark folder (``python build_assets.py SRC``).

``SRC`` is the benchmark data root holding ``train/Train400`` and ``test/{Set12,CBSD68,Kodak24,
Set5}``. Gray images are copied byte for byte; colour crops are cut with OpenCV and saved as PNG.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2

__all__ = ["build"]

HERE = Path(__file__).resolve().parent
GRAY_TRAIN = 50  # the first 50 Train400 images (180x180), unchanged
GRAY_TEST = ("01", "02", "03", "04")  # Set12 images of 256x256, unchanged
COLOR_TRAIN = 24  # one centre crop of 128x128 from each of the first 24 CBSD68 images
COLOR_TEST = ("kodim01", "kodim02", "kodim03", "kodim04")  # centre crops of 256x256 (Kodak24)
SR_SCALES = (2, 3, 4)


def _centre_crop(src: Path, dst: Path, size: int) -> None:
    img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    cv2.imwrite(str(dst), img[top : top + size, left : left + size])


def build(src: Path) -> None:
    """Write ``gray_train``, ``gray_test``, ``color_train``, ``color_test`` and ``sr_test``."""
    folders = ["gray_train", "gray_test", "color_train", "color_test", "sr_test"]
    for name in folders:
        shutil.rmtree(HERE / name, ignore_errors=True)
        (HERE / name).mkdir()
    for path in sorted((src / "train/Train400").glob("*.png"))[:GRAY_TRAIN]:
        shutil.copy2(path, HERE / "gray_train" / path.name)
    for stem in GRAY_TEST:
        shutil.copy2(src / f"test/Set12/{stem}.png", HERE / "gray_test" / f"{stem}.png")
    for path in sorted((src / "test/CBSD68").glob("*.png"))[:COLOR_TRAIN]:
        _centre_crop(path, HERE / "color_train" / path.name, 128)
    for stem in COLOR_TEST:
        _centre_crop(src / f"test/Kodak24/{stem}.png", HERE / "color_test" / f"{stem}.png", 256)
    shutil.copytree(src / "test/Set5/HR", HERE / "sr_test/HR")
    for scale in SR_SCALES:
        shutil.copytree(
            src / f"test/Set5/LR_bicubic/X{scale}", HERE / f"sr_test/LR_bicubic/X{scale}"
        )


if __name__ == "__main__":
    build(Path(sys.argv[1]))
