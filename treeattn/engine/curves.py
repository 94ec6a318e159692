"""PNG curves of a run for its report: training loss and validation PSNR per test set.

Drawn with matplotlib's object API (``Figure``, no ``pyplot``), so nothing depends on or changes
a global backend, and it works without a display.
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

__all__ = ["read_log", "save_curves"]


def read_log(run_dir: str | Path) -> list[dict[str, float | str]]:
    """The records of ``<run_dir>/log.jsonl`` (see :class:`treeattn.engine.logs.RunLogger`)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plot(path: Path, series: dict[str, list[tuple[float, float]]], *, ylabel: str) -> Path:
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.add_subplot()
    for label, points in series.items():
        steps, values = zip(*points, strict=True)
        axes.plot(steps, values, marker="o" if len(points) < 30 else None, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.savefig(path, dpi=100)
    return path


def save_curves(run_dir: str | Path, folder: str | Path) -> list[Path]:
    """Draw ``loss.png`` and ``val_psnr.png`` of a run's log into ``folder``.

    Args:
        run_dir: The run folder holding ``log.jsonl``.
        folder: Where the PNG files go (created if needed).

    Returns:
        The files written (none for a curve without records).
    """
    records = read_log(run_dir)
    loss = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    psnr: dict[str, list[tuple[float, float]]] = {}
    for record in (r for r in records if r["kind"] == "val"):
        for key, value in record.items():
            if key.endswith("/psnr"):
                psnr.setdefault(key.removesuffix("/psnr"), []).append((record["step"], value))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if loss:
        written.append(_plot(folder / "loss.png", {"training loss": loss}, ylabel="loss"))
    if psnr:
        written.append(_plot(folder / "val_psnr.png", psnr, ylabel="validation PSNR (dB)"))
    return written
