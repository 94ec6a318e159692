"""Fixtures of the engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_testlib import load_recipe, write_images

from treeattn.engine import TaskSpec


@pytest.fixture(scope="session")
def denoise_spec() -> TaskSpec:
    return load_recipe("denoise")


@pytest.fixture(scope="session")
def image_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(train, test) gray folders: 6 training images, 3 test images (odd on purpose)."""
    root = tmp_path_factory.mktemp("images")
    return write_images(root / "train", 6), write_images(root / "test", 3, size=24)
