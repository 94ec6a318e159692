"""Tiny models saved to temporary folders (session-wide)."""

from __future__ import annotations

from pathlib import Path

import pytest
from inference_testlib import tiny_denoiser, tiny_sr


@pytest.fixture(scope="session")
def gray_model_dir(tmp_path_factory) -> Path:
    """A gray tiny denoiser saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("gray_model")
    tiny_denoiser().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sr_model_dir(tmp_path_factory) -> Path:
    """An RGB ×2 tiny SR model saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("sr_model")
    tiny_sr().save_pretrained(folder)
    return folder
