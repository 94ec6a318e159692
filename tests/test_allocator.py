"""keep_freed_memory: glibc keeps freed tensors' memory for reuse (the recipes' and restore's
calls are tested beside their thread settings)."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys
import textwrap

import pytest

import treeattn.allocator as allocator
from treeattn.allocator import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocates, touches and frees float32 tensors of 16 and 24 MiB, and prints the free bytes (MiB)
# glibc's arena holds afterwards (mallinfo2: memory kept in the process for reuse, not returned).
_KEPT = textwrap.dedent(
    """
    import ctypes, os, sys, torch
    for name in list(os.environ):
        if name.startswith("MALLOC_") or name == "GLIBC_TUNABLES":
            del os.environ[name]
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    if sys.argv[1] == "keep":
        from treeattn.allocator import keep_freed_memory
        assert keep_freed_memory()
    kept = []
    for mib in (16, 24):
        t = torch.empty(mib * 2**18)
        t.fill_(1.0)
        del t
        kept.append(mallinfo2().fordblks / 2**20)
    print(*kept)
    """
)


def _kept_mib(mode: str) -> list[float]:
    """Free MiB in glibc's arena after freeing a 16 MiB and then a 24 MiB tensor."""
    result = subprocess.run(
        [sys.executable, "-c", _KEPT, mode], capture_output=True, text=True, check=True
    )
    return [float(x) for x in result.stdout.split()]


@pytest.mark.skipif(
    not GLIBC or not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc >= 2.33 only"
)
def test_freed_tensors_stay_in_the_process():
    """With the setting, a freed 16 and 24 MiB map stay in the arena for the next tensor; without
    it, glibc hands each back to the system (the next one arrives as fresh, faulting pages)."""
    after_16, after_24 = _kept_mib("keep")
    assert after_16 >= 16 and after_24 >= 24
    assert max(_kept_mib("default")) < 1


def test_environment_settings_win(monkeypatch):
    monkeypatch.setattr(ctypes, "CDLL", lambda *a: pytest.fail("mallopt called anyway"))
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    for name, value in [
        ("MALLOC_TRIM_THRESHOLD_", "1000"),
        ("MALLOC_MMAP_MAX_", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000"),
    ]:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert keep_freed_memory() is False


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(ctypes, "CDLL", lambda *a: pytest.fail("mallopt called anyway"))
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert keep_freed_memory() is False
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert keep_freed_memory() is False


def test_thresholds_are_values_glibc_accepts():
    assert allocator.MMAP_THRESHOLD == 32 * 2**20  # glibc's largest on 64-bit
    assert allocator.TRIM_THRESHOLD == 2**31 - 1  # mallopt takes a C int
