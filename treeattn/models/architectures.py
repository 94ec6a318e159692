"""Deprecated: the architecture table and ``build_model`` are in :mod:`treeattn.models.registry`."""

from typing import Any

from treeattn.deprecation import moved
from treeattn.models import registry

_MOVED = dict.fromkeys(
    [
        "ARCHITECTURES",
        "architecture_name",
        "build_model",
        "model_architecture",
        "register_architecture",
    ],
    registry,
)
__all__ = list(_MOVED)


def __getattr__(name: str) -> Any:
    return moved(__name__, name, _MOVED)
