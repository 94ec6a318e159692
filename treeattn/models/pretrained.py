"""Shipped pretrained weights: one folder per model inside the package, nothing downloaded.

Each folder of ``treeattn/pretrained/`` is a :func:`~treeattn.models.save_pretrained` directory
(``config.json`` + ``model.safetensors``) plus its model card (``README.md``), training curves and
``benchmark.json`` (PSNR/SSIM per test set and level, with the classical baseline it is compared
against). The folder name is the model's name; adding a model is adding a folder.

Example:
    >>> from treeattn.models import create_model, list_pretrained
    >>> list_pretrained()  # doctest: +SKIP
    ['hiir_dn_gray_cpu']
    >>> model = create_model("hiir_dn_gray_cpu", pretrained=True)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PRETRAINED_ROOT",
    "PretrainedInfo",
    "list_pretrained",
    "pretrained_info",
    "pretrained_path",
]

#: Where the shipped weights live (inside the installed package).
PRETRAINED_ROOT = Path(__file__).resolve().parents[1] / "pretrained"
BENCHMARK_NAME = "benchmark.json"


@dataclass(frozen=True)
class PretrainedInfo:
    """What a shipped model is and how it scores.

    Attributes:
        name: The model's name (its folder).
        path: Its ``save_pretrained`` folder.
        summary: One line: what it restores and how it was trained.
        benchmark: ``benchmark.json``'s content: ``{"rows": [{set, level, method, psnr, ssim,
            seconds_per_image}, ...], ...}`` (empty when the folder has none).
    """

    name: str
    path: Path
    summary: str
    benchmark: dict[str, Any] = field(default_factory=dict)

    def scores(self, method: str = "treeattn") -> dict[tuple[str, float], tuple[float, float]]:
        """``{(test set, level): (psnr, ssim)}`` of one method in ``benchmark.json``."""
        return {
            (row["set"], float(row["level"])): (float(row["psnr"]), float(row["ssim"]))
            for row in self.benchmark.get("rows", [])
            if row.get("method") == method
        }


def _folders() -> dict[str, Path]:
    if not PRETRAINED_ROOT.is_dir():
        return {}
    return {
        path.name: path
        for path in sorted(PRETRAINED_ROOT.iterdir())
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    }


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the shipped pretrained models matching a shell-style ``pattern``, sorted."""
    return sorted(fnmatch.filter(_folders(), pattern))


def pretrained_path(name: str) -> Path:
    """The ``save_pretrained`` folder of a shipped model.

    Raises:
        TypeError: If ``name`` is not a string.
        ValueError: If no shipped model has that name (the message lists them).
    """
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str, got {type(name).__name__}")
    folders = _folders()
    if name not in folders:
        close = difflib.get_close_matches(name, folders, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(
            f"no shipped pretrained model named {name!r}{hint} — shipped: {sorted(folders)} "
            "(`treeattn list --pretrained`)"
        )
    return folders[name]


def pretrained_info(name: str) -> PretrainedInfo:
    """Summary and benchmark numbers of a shipped model (see :class:`PretrainedInfo`)."""
    path = pretrained_path(name)
    bench_path = path / BENCHMARK_NAME
    benchmark = json.loads(bench_path.read_text()) if bench_path.is_file() else {}
    return PretrainedInfo(
        name=name, path=path, summary=str(benchmark.get("summary", "")), benchmark=benchmark
    )
