"""Keep the memory a process frees for its own reuse, instead of handing it back and faulting it in.

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc returns large freed blocks to
the system — blocks above its mmap threshold at once, the top of the heap once more than its trim
threshold is free — and the next tensor of that size arrives as fresh pages, each zeroed by the
kernel on first touch (a minor page fault). A training step allocates and frees maps of tens of
megabytes dozens of times, so a CPU step spends a measurable share of its time in those faults
(docs/performance.md: keeping the memory saves 5–23 % of a CPU denoiser's training step on a
2-core AMD EPYC).

:func:`keep_freed_memory` sets glibc's thresholds so freed blocks stay in the process (the largest
mmap threshold glibc accepts, 32 MiB, and a 2 GiB trim threshold), as the environment variables
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would. The price: the process keeps the
memory it has used, up to its peak, until it ends. The recipes and ``treeattn restore`` call it; a
library user may call it at the start of a program. Where the environment sets one of these
thresholds itself (or ``MALLOC_MMAP_MAX_``), that setting is left as it is — the way to opt out
of ``treeattn restore``'s call, e.g. ``MALLOC_TRIM_THRESHOLD_=131072``, glibc's default.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

__all__ = [
    "MMAP_THRESHOLD",
    "TRIM_THRESHOLD",
    "USER_SETTINGS",
    "USER_TUNABLES",
    "keep_freed_memory",
    "user_setting",
]

logger = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2); blocks above it
# are still mapped and returned (a single tensor that large is rare in a step and costs its faults
# once per use either way).
MMAP_THRESHOLD = 32 * 2**20
# Free memory kept at the top of the heap before glibc returns it (mallopt takes a C int).
TRIM_THRESHOLD = 2**31 - 1
# A person's own settings of these glibc thresholds win: with any of them set, nothing is changed.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")
USER_TUNABLES = (
    "glibc.malloc.mmap_threshold",
    "glibc.malloc.trim_threshold",
    "glibc.malloc.mmap_max",
)


def user_setting() -> str | None:
    """The first of glibc's mmap/trim settings this process's environment makes, if any
    (:data:`USER_SETTINGS` variables, :data:`USER_TUNABLES` in ``GLIBC_TUNABLES``)."""
    for name in USER_SETTINGS:
        if name in os.environ:
            return name
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return next((name for name in USER_TUNABLES if f"{name}=" in tunables), None)


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in this process (see the module docstring).

    Returns:
        Whether the thresholds were set: ``False`` without glibc (macOS, Windows, musl), where the
        environment already sets one of these thresholds (:func:`user_setting`: left as it is),
        or if glibc refused them.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    setting = user_setting()
    if setting is not None:
        logger.info(
            "%s is set in the environment: glibc's malloc thresholds are left as set", setting
        )
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # (the mmap threshold first: setting it fixes glibc's sliding thresholds, then the trim one)
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
