"""Argument checks shared by the public APIs: one helper per kind of value, one message style.

Every public constructor and function checks its arguments where they enter, with these helpers, so
that bad input raises a ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad
value) that names the argument and says what to pass instead — never a deep library error and
never a silently wrong result. Booleans are never taken from strings or numbers (``"no"`` is truthy
in Python), and integers never from floats or booleans.

The dtype rule of layers and models lives here too (:func:`as_compute_dtype`): floating-point
input is computed in the module's parameter dtype and returned in the input's dtype; integer,
boolean and complex input raises ``TypeError`` (images must be scaled to floats in [0, 1] first).

Example:
    >>> check_int("dim", 16, minimum=1)
    16
    >>> check_bool("shift", "no")
    Traceback (most recent call last):
    ...
    TypeError: shift='no' must be a bool (True or False), got str
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Collection

import torch

__all__ = [
    "as_compute_dtype",
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_str",
]


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` as an ``int``; booleans and floats (even ``2.0``) are refused.

    Args:
        name: Argument name used in the messages.
        value: The value to check.
        minimum: Smallest allowed value, if any.

    Raises:
        TypeError: if ``value`` is not an integer.
        ValueError: if it is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} must be >= {minimum}")
    return int(value)


def check_float(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_maximum: bool = False,
) -> float:
    """``value`` as a finite ``float`` (ints are accepted, booleans and NaN/inf are not).

    Args:
        name: Argument name used in the messages.
        value: The value to check.
        minimum: Smallest allowed value, if any (inclusive).
        maximum: Largest allowed value, if any.
        open_maximum: ``maximum`` itself is excluded.

    Raises:
        TypeError: if ``value`` is not a real number.
        ValueError: if it is NaN, infinite or outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}={value!r} must be a finite number")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name}={value!r} must be >= {minimum}")
    if maximum is not None and (number > maximum or (open_maximum and number == maximum)):
        raise ValueError(f"{name}={value!r} must be {'<' if open_maximum else '<='} {maximum}")
    return number


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool``; strings such as ``"no"`` and numbers raise ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(
            f"{name}={value!r} must be a bool (True or False), got {type(value).__name__}"
        )
    return value


def check_str(name: str, value: object) -> str:
    """``value`` if it is a non-empty ``str``.

    Raises:
        TypeError: if it is not a string.
        ValueError: if it is empty.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name}={value!r} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def check_choice(name: str, value: object, options: Collection[str]) -> str:
    """``value`` if it names one of ``options`` (the keys of a name→class table).

    Raises:
        TypeError: if it is not a string.
        ValueError: if it is not one of ``options`` (the message lists them and the closest one).
    """
    if not isinstance(value, str):
        raise TypeError(
            f"{name}={value!r} must be a str naming one of {list(options)}, "
            f"got {type(value).__name__}"
        )
    if value not in options:
        close = difflib.get_close_matches(value, list(options), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name}={value!r} is not known{hint}; use one of {list(options)}")
    return value


def as_compute_dtype(
    x: torch.Tensor, dtype: torch.dtype, *, who: str
) -> tuple[torch.Tensor, torch.dtype]:
    """Apply the dtype rule of layers and models to an input tensor.

    Floating-point input is cast to ``dtype`` (the module's parameter dtype); the caller casts
    its output back to the returned input dtype. Anything else is refused.

    Args:
        x: The input tensor.
        dtype: The dtype the module computes in.
        who: The module, for the message.

    Returns:
        ``x`` in ``dtype`` and the original dtype of ``x``.

    Raises:
        TypeError: if ``x`` is not a tensor, or is integer, boolean or complex.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} takes a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{who} takes floating-point input, got {x.dtype}; convert images to floats in "
            "[0, 1] first, e.g. x.float() / 255 for uint8"
        )
    return x.to(dtype), x.dtype
