"""Deprecation aliases: a public name that moved keeps working from its old module, with a warning.

A module whose names moved keeps them in its ``__all__`` and ends with::

    def __getattr__(name: str) -> Any:
        return moved(__name__, name, {"name": new_module, ...})

so ``from old import name`` returns the object from ``new_module`` with a ``DeprecationWarning``
naming the new import.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import Any

__all__ = ["moved"]


def moved(old: str, name: str, new: Mapping[str, ModuleType]) -> Any:
    """The object ``name`` of the module ``old``, looked up where it moved (for ``__getattr__``).

    Args:
        old: The old module's name (its ``__name__``).
        name: The attribute asked for.
        new: Each moved name → the module it lives in now.

    Raises:
        AttributeError: for a name that did not move (the old module has no such attribute).
    """
    if name not in new:
        raise AttributeError(f"module {old!r} has no attribute {name!r}")
    target = new[name].__name__
    warnings.warn(
        f"{old}.{name} moved to {target}.{name}; import it from {target}",
        DeprecationWarning,
        stacklevel=3,  # the caller of the old module's __getattr__
    )
    return getattr(new[name], name)
