"""The notebooks in ``notebooks/`` run from a clean kernel and show what they claim."""

import os
import re
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
TREE_ABLATION = ROOT / "notebooks" / "tree_ablation.ipynb"
DEPTH_ABLATION = ROOT / "notebooks" / "depth_ablation.ipynb"
RESULTS = ROOT / "benchmarks" / "results"


def _text(notebook) -> str:
    """All stream and plain-text outputs of a notebook, in order."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output and "text/plain" in output.data:
                parts.append(output.data["text/plain"])
    return "".join(parts)


def _images(notebook) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def _execute(source: Path, tmp_path: Path, monkeypatch, **env: str):
    """Run a copy of a notebook from a clean kernel in ``tmp_path``; return it executed."""
    path = tmp_path / source.name
    shutil.copy(source, path)
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # the kernel is a subprocess: it must find the package of this checkout
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        startup_timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return notebook


def _committed_results() -> Path:
    """The full grid's results when they exist, else the committed --quick ones."""
    full = RESULTS / "ablation.json"
    return full if full.is_file() else RESULTS / "ablation_quick.json"


LONG_RESULTS = RESULTS / "ablation_long.json"
#: A verdict line of the long study: one per comparison and test set
LONG_VERDICT = re.compile(
    r" = [+-][\d.]+ dB, 95 % \[[+-][\d.]+, [+-][\d.]+\] \(.*\): "
    r"(better|worse|no difference at this power|no verdict: seed spread not measured)",
)


def _long_figures(present: bool) -> int:
    """Figures of the long-study section: one (curves against time, PSNR against MACs)."""
    return 1 if present else 0


def _check_long_section(text: str, path: Path | None) -> None:
    """The long section says it has not run, or states one verdict per comparison and set."""
    import json

    if path is None or not path.is_file():
        assert "long study: not run yet" in text
        assert not LONG_VERDICT.search(text)
        return
    results = json.loads(path.read_text())
    rows = results["rows"]
    runs = sum(len(row["seeds"]) for row in rows.values())
    assert f"long results file: {path.name}, {runs} runs of {len(rows)} rows" in text
    tests = {t for row in rows.values() for run in row["seeds"].values() for t in run["test"]}
    pairs = [(a, b) for a, b, *_ in results["meta"]["comparisons"] if a in rows and b in rows]
    assert len(LONG_VERDICT.findall(text)) == len(pairs) * len(tests)
    assert len(re.findall(r"^  \S+/psnr: at \d+ s: .* -> \w+ ahead$", text, re.MULTILINE)) >= 1


def test_saved_depth_ablation_notebook_holds_its_outputs():
    notebook = nbformat.read(DEPTH_ABLATION, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    text = _text(notebook)
    assert f"results file: {_committed_results().name}" in text
    _check_long_section(text, LONG_RESULTS)
    assert _images(notebook) == 4 + _long_figures(LONG_RESULTS.is_file())


@pytest.mark.slow
def test_depth_ablation_notebook_executes_on_the_committed_results(tmp_path, monkeypatch):
    import json

    path = _committed_results()
    results = json.loads(path.read_text())
    long = LONG_RESULTS if LONG_RESULTS.is_file() else tmp_path / "absent" / "ablation_long.json"
    notebook = _execute(
        DEPTH_ABLATION,
        tmp_path,
        monkeypatch,
        ABLATION_RESULTS=str(path),
        ABLATION_LONG_RESULTS=str(long),
    )
    text = _text(notebook)
    assert f"results file: {path.name}, {len(results['rows'])} rows" in text
    for name, row in results["rows"].items():  # one table line per row, with its test PSNR
        psnr = next(iter(row["test"].values()))["psnr"]
        assert re.search(rf"^{name}\s.*\s{psnr:.2f} / ", text, flags=re.MULTILINE), name
    assert re.search(r"3 seeds, PSNR [\d.]+ dB, range [\d.]+ dB", text)
    verdicts = re.findall(r" = [+-][\d.]+ dB \(MACs [+-]\d+%\): (.+)$", text, flags=re.MULTILINE)
    tests = {test for row in results["rows"].values() for test in row["test"]}
    assert len(verdicts) == 7 * len(tests)  # one per comparison and test set
    assert all(v.startswith(("within noise", "depth", "v4")) for v in verdicts)
    assert len(re.findall(r"half of the gradient mass within", text)) == 4
    assert ("QUICK RESULTS" in text) == (path.name == "ablation_quick.json")
    _check_long_section(text, long)
    assert _images(notebook) == 4 + _long_figures(long.is_file())


@pytest.mark.slow
def test_depth_ablation_notebook_states_the_long_studys_verdicts(tmp_path, monkeypatch):
    """The long section on a --quick long study: verdicts with intervals, equal-time winners."""
    import subprocess
    import sys

    long = tmp_path / "results" / "ablation_long_quick.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--budget", "long"]
    command += ["--quick", "--rows", "depth1", "depth2", "swin8"]
    command += ["--seeds", "depth1=2", "depth2=1", "swin8=1"]
    command += ["--results", str(long), "--work", str(tmp_path / "work")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    notebook = _execute(
        DEPTH_ABLATION,
        tmp_path,
        monkeypatch,
        ABLATION_RESULTS=str(_committed_results()),
        ABLATION_LONG_RESULTS=str(long),
    )
    text = _text(notebook)
    _check_long_section(text, long)
    assert "QUICK LONG RESULTS" in text
    assert re.search(r"^seed spread, gray_test: sd [\d.]+ dB \(1 degrees of freedom\)", text, re.M)
    assert _images(notebook) == 4 + _long_figures(True)


def test_saved_tree_ablation_notebook_holds_its_outputs():
    notebook = nbformat.read(TREE_ABLATION, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code)
    assert "gradient support == analytic set in all" in _text(notebook)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert _images(notebook) == 5


@pytest.mark.slow
def test_tree_ablation_notebook_executes_and_reports(tmp_path, monkeypatch):
    notebook = _execute(TREE_ABLATION, tmp_path, monkeypatch)
    text = _text(notebook)
    # every gradient map's support equals the analytic dependency set
    summary = re.search(r"gradient support == analytic set in all (\d+) cases: (\w+)", text)
    assert summary is not None and int(summary[1]) >= 20 and summary[2] == "True"
    assert re.search(r"\bFalse\b", text) is None
    # L3 bridges regions: with the conv FFN, 3 stacked layers reach 6 blocks from a block edge
    assert re.search(r"gated_dwconv\s+3 edge\s+96×96\s+6\s+True", text)
    assert re.search(r"mlp\s+3 edge\s+16×16\s+1\s+True", text)
    # the counted attention MACs of the default layer equal 1.5·(p² + g²)·C
    macs = re.search(r"v3 attention MACs/px: counted ([\d,]+), analytic .* = ([\d,]+)", text)
    assert macs is not None and macs[1] == macs[2] == f"{int(1.5 * (16**2 + 4**2) * 180):,}"
    for row in ("v1, level 2", "v4, tree (16, 64, 128)", "ffn_type=mlp (no L3)", "Swin window 64"):
        assert row in text
    assert len(re.findall(r"^\S.*\s[\d.]+\s+[\d.]+×$", text, flags=re.MULTILINE)) == 6
    assert _images(notebook) == 5  # matplotlib figures: maps, v1 levels, stacking, costs, timing
