"""keep_freed_memory: glibc keeps freed tensors' memory for reuse (the recipes' and restore's
calls are tested beside their thread settings)."""

from __future__ import annotations

import ctypes
import os
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
    import ctypes, sys, torch
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
    """Free MiB in glibc's arena after freeing a 16 MiB and then a 24 MiB tensor, in a process
    started without malloc settings in its environment (glibc reads them at start-up)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    result = subprocess.run(
        [sys.executable, "-c", _KEPT, mode], capture_output=True, text=True, check=True, env=env
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


@pytest.fixture
def fake_glibc(monkeypatch):
    """A glibc platform whose mallopt records its calls (nothing of this process changes)."""
    calls: list = []

    class Mallopt:  # (takes argtypes/restype like a ctypes function)
        def __call__(self, param, value):
            calls.append((param, value))
            return 1

    class Libc:
        mallopt = Mallopt()

    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(ctypes, "CDLL", lambda *a: Libc())
    for name in (*allocator.USER_SETTINGS, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_environment_settings_of_the_thresholds_win(monkeypatch, fake_glibc):
    for name, value, found in [
        ("MALLOC_TRIM_THRESHOLD_", "1000", "MALLOC_TRIM_THRESHOLD_"),
        ("MALLOC_MMAP_THRESHOLD_", "1000", "MALLOC_MMAP_THRESHOLD_"),
        ("MALLOC_MMAP_MAX_", "0", "MALLOC_MMAP_MAX_"),
        (
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1000",
            "glibc.malloc.trim_threshold",
        ),
    ]:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert allocator.user_setting() == found
            assert keep_freed_memory() is False
    assert fake_glibc == []


def test_unrelated_malloc_settings_do_not_stop_it(monkeypatch, fake_glibc):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert allocator.user_setting() is None
    assert keep_freed_memory() is True
    assert fake_glibc == [(-3, allocator.MMAP_THRESHOLD), (-1, allocator.TRIM_THRESHOLD)]


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(ctypes, "CDLL", lambda *a: pytest.fail("mallopt called anyway"))
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert keep_freed_memory() is False
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert keep_freed_memory() is False
