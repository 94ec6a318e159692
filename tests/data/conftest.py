"""Fixtures for the data tests: the shared benchmark folder (skipped when absent)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Root of the benchmark images beside the clone (``../shared/data``)."""
    if not (SHARED_DATA / "test").is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA.resolve()
