"""Paths of the small default data sets shipped in ``treeattn/assets`` (see its README.md).

They exist inside the installed package, so recipes, docs and tests need no download::

    from treeattn.data.embedded import test_dir, train_dir
    train = DegradedFolder(train_dir(color=False), degradation=AWGN(sigma=25), patch_size=64)
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS_DIR", "embedded_dir", "sr_lr_dir", "sr_test_dir", "test_dir", "train_dir"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
_KINDS = ("gray_train", "gray_test", "color_train", "color_test", "sr_test")
_SR_SCALES = (2, 3, 4)


def embedded_dir(kind: str) -> Path:
    """Folder of one embedded set: ``gray_train``, ``gray_test``, ``color_train``, ``color_test``
    or ``sr_test`` (Set5, with ``HR/`` and ``LR_bicubic/X{2,3,4}/``).

    Raises:
        ValueError: On an unknown kind.
        FileNotFoundError: If the package was installed without its data files.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown embedded data {kind=}; choose one of {_KINDS}")
    path = ASSETS_DIR / kind
    if not path.is_dir():
        raise FileNotFoundError(
            f"embedded data folder {str(path)!r} is missing; reinstall treeattn with its package "
            "data (assets/**/*) or rebuild it with treeattn/assets/build_assets.py"
        )
    return path


def train_dir(*, color: bool) -> Path:
    """Small training set: 50 gray 180x180 images, or 24 colour 128x128 crops."""
    return embedded_dir("color_train" if color else "gray_train")


def test_dir(*, color: bool) -> Path:
    """Small test set of four 256x256 images: Set12 (gray) or Kodak24 crops (colour)."""
    return embedded_dir("color_test" if color else "gray_test")


def sr_test_dir() -> Path:
    """Set5 ground truths (``HR`` images of several sizes) for super-resolution."""
    return embedded_dir("sr_test") / "HR"


def sr_lr_dir(scale: int) -> Path:
    """Set5 MATLAB-bicubic inputs for ``scale`` in 2, 3, 4 (files named ``<stem>x<scale>.png``)."""
    if scale not in _SR_SCALES:
        raise ValueError(f"{scale=} has no embedded LR files; choose one of {_SR_SCALES}")
    return embedded_dir("sr_test") / "LR_bicubic" / f"X{scale}"
