"""Helpers shared by the benchmark scripts: ABBA timing, MAC counts, peak RSS, machine notes.

Not a test and not part of the package: the scripts in this folder import it by file name.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Hashable
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from treeattn.allocator import keep_freed_memory
from treeattn.analysis.macs import count_macs

__all__ = [
    "abba_medians",
    "abba_times",
    "count_forward_macs",
    "cpu_details",
    "cpu_model",
    "machine_meta",
    "paired_ratios",
    "peak_rss",
    "report_load",
    "save_results",
    "summarise",
]

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def abba_times(
    runs: dict[Hashable, Callable[[], None]],
    *,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[Hashable, list[float]]:
    """Time each run ``repeats`` times, alternating the order every round (A B, B A, ...).

    ``clock`` is wall time by default; ``time.thread_time`` (CPU time of the thread) is much
    steadier for one-thread comparisons on a shared machine.

    Alternation spreads slow drifts of a shared machine (another job, thermal state) evenly over
    the runs being compared, so their ratios stay meaningful even when absolute times do not.
    """
    names = list(runs)
    times: dict[Hashable, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            start = clock()
            runs[name]()
            times[name].append(clock() - start)
    return times


def abba_medians(
    runs: dict[Hashable, Callable[[], None]],
    *,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
    warm_up: bool = True,
) -> dict[Hashable, float]:
    """Median seconds of each run: one untimed run of each first (unless ``warm_up=False``),
    then :func:`abba_times`."""
    if warm_up:
        for run in runs.values():
            run()
    times = abba_times(runs, repeats=repeats, clock=clock)
    return {name: statistics.median(t) for name, t in times.items()}


def paired_ratios(times: list[float], base: list[float]) -> dict[str, float]:
    """Quartiles of ``times[i] / base[i]`` over the rounds: each round's two runs are neighbours,
    so a drift of the machine's speed (frequency, a neighbour's load) cancels in each ratio, and the
    spread says how far one run's ratio can be trusted."""
    ratios = [t / b for t, b in zip(times, base, strict=True)]
    if len(ratios) < 2:
        return {"q1": ratios[0], "median": ratios[0], "q3": ratios[0]}
    q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return {"q1": q1, "median": median, "q3": q3}


def summarise(times: list[float]) -> dict[str, float]:
    """Median, fastest and run count of a list of timings (seconds)."""
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": len(times)}


def count_forward_macs(build: Callable[..., nn.Module], size: int, *, in_chans: int) -> int:
    """MACs of one whole-map forward of ``build(device="meta")`` on a ``size²`` input.

    ``build`` should pick the ``math`` attention backend, so that the count is the algorithm's
    (the fused path zero-pads halved q/k).
    """
    return count_macs(build(device="meta"), (size, size), in_chans=in_chans).total


def _read_hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@contextmanager
def peak_rss():
    """Peak resident set size of this process inside the block, in bytes (``box["bytes"]``).

    On Linux the high-water mark is reset on entry (``/proc/self/clear_refs``), so the value
    belongs to the block alone; elsewhere it is the process's peak so far (``box["reset"]`` says
    which).
    """
    box: dict[str, int | bool | None] = {"bytes": None, "reset": False}
    try:
        _CLEAR_REFS.write_text("5")
        box["reset"] = True
    except OSError:
        pass
    try:
        yield box
    finally:
        hwm = _read_hwm_bytes() if box["reset"] else None
        box["bytes"] = hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows (e.g. ``x86_64``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Flags that change which code the kernels and the BLAS run (widest first), as /proc/cpuinfo names
# them.
_VECTOR_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "fma", "neon", "asimd")


def cpu_details(
    cpuinfo: str | None = None, cache: Path = Path("/sys/devices/system/cpu/cpu0/cache")
) -> dict[str, str | list[str] | dict[str, str] | None]:
    """What tells two CPUs of one model name apart (an "AMD EPYC" may be a Zen 3 without AVX-512
    or a Zen 4 with it): family and model numbers, the vector flags of :data:`_VECTOR_FLAGS` the
    CPU has, and the size of each cache level of the first core (``None`` where unknown).

    Args:
        cpuinfo: The text of ``/proc/cpuinfo`` (read when ``None``).
        cache: The first core's cache folder in sysfs.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first core's
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    caches = {}
    for index in sorted(cache.glob("index*")):
        try:
            level, kind = ((index / name).read_text().strip() for name in ("level", "type"))
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        caches[f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''}"] = size
    return {
        "family": fields.get("cpu family"),
        "model": fields.get("model"),
        "vector_flags": [flag for flag in _VECTOR_FLAGS if flag in flags],
        "caches": caches or None,
    }


def machine_meta(load_before: float) -> dict:
    """Torch version, threads, CPU (with :func:`cpu_details`) and the load seen before and after
    the benchmark."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        "cpu_details": cpu_details(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def report_load(meta: dict, note: str) -> None:
    """Print the thread count and the load seen, then ``note`` (what the table shows)."""
    print(
        f"threads={meta['threads']} load(1 min) before={meta['load_before']:.2f} "
        f"after={meta['load_after']:.2f}  ({note})"
    )


def add_keep_freed_memory(parser: argparse.ArgumentParser) -> None:
    """``--keep-freed-memory``: time with freed memory kept in the process, as the recipes run
    (:func:`treeattn.allocator.keep_freed_memory`); read back by :func:`apply_keep_freed_memory`."""
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="keep freed memory in the process, as the recipes do (every layer timed)",
    )


def apply_keep_freed_memory(args: argparse.Namespace) -> bool:
    """Keep freed memory if ``--keep-freed-memory`` asked for it; whether it did (for the meta).

    Raises:
        SystemExit: if it was asked for and glibc's thresholds could not be set.
    """
    if args.keep_freed_memory and not keep_freed_memory():
        raise SystemExit(
            "--keep-freed-memory: glibc's thresholds were not set (no glibc, or the environment "
            "sets MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or MALLOC_MMAP_MAX_ itself)"
        )
    return args.keep_freed_memory


def save_results(directory: Path, name: str, meta: dict, results: dict) -> Path:
    """Write ``{"meta": ..., "results": ...}`` to ``directory/name.json`` and say where."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"saved {path}")
    return path
