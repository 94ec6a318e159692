"""Tiny-width versions of registered models, keeping each variant's structure."""

from __future__ import annotations

from typing import Any

import pytest

from treeattn.models import ColumnarConfig, UNetConfig, create_model, model_config

# Same tree depth as the registered variant, at tiny block sizes.
_TINY_TREES = {1: (2,), 2: (2, 4), 3: (2, 4, 8)}


def tiny_overrides(name: str) -> dict[str, Any]:
    """Settings that shrink a registered model to a tiny width (for fast tests)."""
    config = model_config(name)
    swin = config.layer_type == "swin"
    if isinstance(config, ColumnarConfig):
        settings: dict[str, Any] = {
            "dim": 8,
            "num_heads": 2,
            "depths": (2,),
            "upsampler_dim": 8,
        }
        if not swin:
            settings["patch_sizes"] = _TINY_TREES[len(config.patch_sizes)]
    else:
        assert isinstance(config, UNetConfig)
        settings = {
            "dims": (4, 8, 16),
            "depths": (2, 1, 1),
            "decoder_depths": (1, 1),
            "num_heads": (1, 1, 1),
        }
        if not swin:
            settings["patch_sizes"] = tuple(
                _TINY_TREES[len(tree)] for tree in config.patch_sizes[:3]
            )
    if swin:
        settings["window_size"] = 4
    return settings


@pytest.fixture
def make_tiny():
    """``make_tiny(name, **extra)`` builds a registered model at tiny width."""

    def build(name: str, **extra: Any):
        return create_model(name, **{**tiny_overrides(name), **extra})

    return build
