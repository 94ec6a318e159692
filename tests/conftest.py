"""Shared pytest configuration: hypothesis profile and thread count sized for 2-core CI machines."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    print_blob=True,
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run tiny tensors: one thread is as fast, and immune to a busy second core (two torch
    threads run many times slower when another process holds a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _malloc_untouched(monkeypatch):
    """Runs started in-process (the trainer, ``treeattn restore``) would set glibc's malloc
    thresholds for the rest of the suite: the callers get a no-op here (tests spying on the call
    replace it again; ``tests/test_allocator.py`` runs the real one in child processes)."""
    import treeattn.engine.trainer as trainer
    import treeattn.inference.commands as commands

    for module in (trainer, commands):
        monkeypatch.setattr(module, "keep_freed_memory", lambda: False)
