"""Deprecated: ``load_model`` and ``model_folder`` live in :mod:`treeattn.models.registry`."""

from typing import Any

from treeattn.deprecation import moved
from treeattn.models import registry

_MOVED = dict.fromkeys(
    ["RUN_MODEL_FOLDER", "load_model", "model_folder"],
    registry,
)
__all__ = list(_MOVED)


def __getattr__(name: str) -> Any:
    return moved(__name__, name, _MOVED)
