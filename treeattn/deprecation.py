"""Deprecation aliases: a public name that moved or was renamed keeps working, with a warning.

A module whose names moved keeps them in its ``__all__`` and ends with::

    def __getattr__(name: str) -> Any:
        return moved(__name__, name, {"name": new_module, ...})

so ``from old import name`` returns the object from ``new_module`` with a ``DeprecationWarning``
naming the new import. A name that changed (in the same module or another) goes through
:func:`renamed` instead, ``{"old_name": new_object, ...}``, whose warning names the new one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["moved", "renamed"]


def moved(old: str, name: str, new: Mapping[str, ModuleType]) -> Any:
    """The object ``name`` of the module ``old``, looked up where it moved (for ``__getattr__``).

    Args:
        old: The old module's name (its ``__name__``).
        name: The attribute asked for.
        new: Each moved name → the module it lives in now.

    Raises:
        AttributeError: for a name that did not move (the old module has no such attribute).
    """
    _check_known(old, name, new)
    target = new[name].__name__
    _warn(f"{old}.{name} moved to {target}.{name}; import it from {target}")
    return getattr(new[name], name)


def renamed(old: str, name: str, new: Mapping[str, Callable[..., Any]]) -> Any:
    """The function or class that the old name ``name`` of the module ``old`` now goes by (for
    ``__getattr__``).

    Args:
        old: The old module's name (its ``__name__``).
        name: The attribute asked for.
        new: Each old name → the object now under its new name (its ``__module__`` and
            ``__name__`` say where to import it from).

    Raises:
        AttributeError: for a name that was not renamed (the old module has no such attribute).
    """
    _check_known(old, name, new)
    target = new[name]
    _warn(f"{old}.{name} is now {target.__module__}.{target.__name__}; import that name instead")
    return target


def _check_known(old: str, name: str, aliases: Mapping[str, Any]) -> None:
    if name not in aliases:
        raise AttributeError(f"module {old!r} has no attribute {name!r}")


def _warn(message: str) -> None:
    # stacklevel 4: past this helper, moved/renamed and the old module's __getattr__, to the caller
    warnings.warn(message, DeprecationWarning, stacklevel=4)
