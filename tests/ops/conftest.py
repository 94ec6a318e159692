"""Fixtures of the operator tests."""

import pytest

import treeattn.ops.cpu_kernel as cpu_kernel


@pytest.fixture(scope="module")
def kernel():
    """treeattn's C++ kernels, built on first use; tests that need them skip where they cannot
    be built (no C++ compiler or ninja)."""
    built = cpu_kernel.load_cpu_kernel()
    if built is None:
        pytest.skip("the C++ kernels cannot be built here (no C++ compiler or ninja)")
    return built
