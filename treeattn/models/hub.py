"""Deprecated: the file format lives in :mod:`treeattn.models.checkpoint`, and
``save_pretrained`` / ``from_pretrained`` / ``read_pretrained`` in :mod:`treeattn.models.registry`.
"""

from typing import Any

from treeattn.deprecation import moved
from treeattn.models import checkpoint, registry

_IN_REGISTRY = ["from_pretrained", "read_pretrained", "save_pretrained"]
_IN_CHECKPOINT = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CheckpointError",
    "SavedWeights",
    "fit_problems",
    "load_weights",
    "read_weights",
]
_MOVED = {**dict.fromkeys(_IN_CHECKPOINT, checkpoint), **dict.fromkeys(_IN_REGISTRY, registry)}
__all__ = sorted(_MOVED)


def __getattr__(name: str) -> Any:
    return moved(__name__, name, _MOVED)
