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
import os
import tempfile
from collections.abc import Collection
from pathlib import Path

import torch

__all__ = [
    "as_compute_dtype",
    "check_bool",
    "check_choice",
    "check_device",
    "check_float",
    "check_int",
    "check_path",
    "check_str",
    "make_writable_dir",
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
    open_minimum: bool = False,
    open_maximum: bool = False,
) -> float:
    """``value`` as a finite ``float`` (ints are accepted, booleans and NaN/inf are not).

    Args:
        name: Argument name used in the messages.
        value: The value to check.
        minimum: Smallest allowed value, if any.
        maximum: Largest allowed value, if any.
        open_minimum: ``minimum`` itself is excluded (``minimum=0.0, open_minimum=True``:
            positive).
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
    if minimum is not None and (number < minimum or (open_minimum and number == minimum)):
        raise ValueError(f"{name}={value!r} must be {'>' if open_minimum else '>='} {minimum}")
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


def check_path(name: str, value: object) -> Path:
    """``value`` as a ``Path`` if it is a non-empty ``str`` or an ``os.PathLike``.

    Raises:
        TypeError: for anything else (``None``, numbers, lists, ...).
        ValueError: for an empty string.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{name}={value!r} must be a path (str or pathlib.Path), got {type(value).__name__}"
        )
    if isinstance(value, str) and not value:
        raise ValueError(f"{name} must be a non-empty path")
    return Path(value)


def make_writable_dir(flag: str, path: str | os.PathLike) -> Path:
    """Create the folder ``path`` if needed and make sure a file can be written there.

    Args:
        flag: How the user gave the folder, for the message (e.g. ``--output-dir``).
        path: The folder.

    Raises:
        ValueError: If it cannot be created or written (the OS reason).
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(
            f"{flag} {str(folder)!r} cannot be written ({err.strerror or err}); choose a folder "
            "you can write to"
        ) from err
    return folder


def check_device(name: str, value: object, *, allow_meta: bool = True) -> torch.device | None:
    """``value`` as a ``torch.device`` that this torch build and machine can use.

    ``None`` passes through (the caller's default). Availability is tested by allocating an empty
    tensor there, so ``"cuda"`` on a CPU-only build or a missing ``"cuda:3"`` fails here, with a
    message naming the argument, instead of deep inside torch.

    Args:
        name: Argument name used in the messages.
        value: A ``str`` (``"cpu"``, ``"cuda:1"``, ``"mps"``), a ``torch.device``, an
            accelerator index (``int``, as torch takes it), or ``None``.
        allow_meta: Accept the ``meta`` device (shapes only, no values: fine for counting,
            useless for restoring or exporting).

    Raises:
        TypeError: if ``value`` is not a ``str``, ``torch.device``, ``int`` or ``None``.
        ValueError: if it is not a device name, not available here, or ``meta`` when
            ``allow_meta`` is false.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, torch.device, int)):
        raise TypeError(
            f"{name}={value!r} must be a device name such as 'cpu' or 'cuda:0' (or a "
            f"torch.device), got {type(value).__name__}"
        )
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{name}={value!r} is not a device name ({error}); use e.g. 'cpu', 'cuda', 'cuda:1' "
            "or 'mps'"
        ) from None
    if device.type == "meta":
        if not allow_meta:
            raise ValueError(
                f"{name}={value!r} holds shapes only, no values; use a real device such as "
                "'cpu' or 'cuda'"
            )
        return device
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{name}={value!r} is not available here ({reason}); use 'cpu' or a device this "
            "machine has"
        ) from None
    return device


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
