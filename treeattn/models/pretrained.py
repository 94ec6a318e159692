"""Deprecated: the shipped pretrained models are listed by :mod:`treeattn.models.registry`."""

from typing import Any

from treeattn.deprecation import moved
from treeattn.models import registry

_MOVED = dict.fromkeys(
    [
        "PRETRAINED_ROOT",
        "PretrainedInfo",
        "list_pretrained",
        "pretrained_info",
        "pretrained_path",
    ],
    registry,
)
__all__ = list(_MOVED)


def __getattr__(name: str) -> Any:
    return moved(__name__, name, _MOVED)
