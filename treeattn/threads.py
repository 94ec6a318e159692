"""How many CPU threads each training process uses.

``accelerate launch`` without a config file exports ``OMP_NUM_THREADS=1`` to its children, which
leaves all but one core idle on a CPU machine. The engine therefore decides the thread count itself:
the cores this process may run on, shared evenly among the processes of this machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["available_cores", "local_process_count", "resolve_threads"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def local_process_count(env: Mapping[str, str] | None = None) -> int:
    """Processes of this run on this machine (``LOCAL_WORLD_SIZE`` of torchrun/accelerate).

    Args:
        env: Environment to read (default ``os.environ``).
    """
    env = os.environ if env is None else env
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        value = env.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def resolve_threads(
    requested: int, *, cores: int | None = None, processes: int | None = None
) -> int:
    """Threads per process: ``requested`` if given, else the cores shared by the local processes.

    Args:
        requested: ``--threads`` (0 = decide from the machine).
        cores: Cores available (default :func:`available_cores`).
        processes: Local processes (default :func:`local_process_count`).

    Raises:
        ValueError: If ``requested`` is negative.
    """
    if requested < 0:
        raise ValueError(f"--threads must be >= 0 (0 = every available core), got {requested}")
    if requested:
        return requested
    cores = available_cores() if cores is None else cores
    processes = local_process_count() if processes is None else processes
    return max(1, cores // max(1, processes))
