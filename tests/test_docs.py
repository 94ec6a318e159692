"""The documentation site builds with ``mkdocs build --strict`` (API reference and notebooks)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("mkdocs_jupyter")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return site


def test_api_reference_documents_the_public_api(site):
    import treeattn.engine
    import treeattn.inference
    import treeattn.layers
    import treeattn.models

    for package in (treeattn.layers, treeattn.models, treeattn.engine, treeattn.inference):
        page = (site / "api" / package.__name__.split(".")[-1] / "index.html").read_text()
        ids = {f'id="{package.__name__}.{name}"' for name in package.__all__}
        missing = sorted(i for i in ids if i not in page)
        assert not missing, f"{package.__name__}: {missing}"


def test_notebooks_and_pages_are_in_the_site(site):
    for notebook in ("tree_ablation", "depth_ablation"):
        page = (site / "notebooks" / notebook / "index.html").read_text()
        assert "data:image/png;base64" in page  # rendered with its saved figures
    home = (site / "index.html").read_text()
    assert "Quick start" in home and "create_model" in home
    assert "benchmarks/ablation.py" in (site / "ablation" / "index.html").read_text()
