"""Deprecated: ``create_model`` lives in :mod:`treeattn.models.registry`."""

from typing import Any

from treeattn.deprecation import moved
from treeattn.models import registry

_MOVED = dict.fromkeys(
    ["create_model"],
    registry,
)
__all__ = list(_MOVED)


def __getattr__(name: str) -> Any:
    return moved(__name__, name, _MOVED)
