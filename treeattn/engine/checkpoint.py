"""Checkpoints in explicit ``step_N`` folders, written atomically, and their resolution on resume.

A checkpoint is first written by :meth:`accelerate.Accelerator.save_state` into a hidden
``.tmp-step_N`` folder, completed with ``trainer_state.json`` and only then renamed to ``step_N``.
A run killed while saving therefore leaves a ``.tmp-*`` folder that is never taken for ``latest``;
it is removed by the next save.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

__all__ = [
    "STATE_FILE",
    "check_compatible",
    "latest_checkpoint",
    "list_checkpoints",
    "read_trainer_state",
    "resolve_checkpoint",
    "save_checkpoint",
]

STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"step_(\d+)")
_WEIGHTS_FILE = "model.safetensors"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete ``step_N`` checkpoints in ``output_dir`` as ``(N, path)``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.fullmatch(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step, or ``None`` when there is none."""
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def resolve_checkpoint(spec: str, *, output_dir: str | Path) -> Path | None:
    """Turn ``--resume_from_checkpoint PATH|latest`` into a checkpoint folder.

    Args:
        spec: ``"latest"`` or a path to a ``step_N`` folder.
        output_dir: Where ``latest`` looks.

    Returns:
        The folder, or ``None`` for ``latest`` when ``output_dir`` holds no complete checkpoint.

    Raises:
        FileNotFoundError: If an explicit path is missing or not a complete checkpoint.
    """
    if spec == "latest":
        return latest_checkpoint(output_dir)
    path = Path(spec)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(
            f"--resume_from_checkpoint {path} is not a complete checkpoint (no {STATE_FILE}); "
            f"pass a step_N folder written by a finished save, or 'latest'"
        )
    return path


def read_trainer_state(path: str | Path) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint folder."""
    return json.loads((Path(path) / STATE_FILE).read_text())


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    *,
    step: int,
    state: dict[str, Any],
    keep: int | None = None,
) -> Path:
    """Save the full training state as ``output_dir/step_{step}``, atomically.

    Every process must call this (``save_state`` writes per-process RNG states).

    Args:
        accelerator: The run's accelerator.
        output_dir: Run folder.
        step: Optimizer steps done.
        state: JSON-serialisable trainer state (progress counters, model identity).
        keep: Keep only this many newest checkpoints (``None`` keeps all).

    Returns:
        The final checkpoint folder.
    """
    root = Path(output_dir)
    final = root / f"step_{step}"
    tmp = root / f".tmp-step_{step}"
    if accelerator.is_main_process:
        for stale in root.glob(".tmp-step_*"):
            shutil.rmtree(stale)
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({**state, "step": step}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        if keep is not None:
            for _, old in list_checkpoints(root)[:-keep]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def check_compatible(path: str | Path, model: nn.Module, *, model_name: str) -> None:
    """Check, before training, that a checkpoint holds weights for ``model``.

    Args:
        path: Checkpoint folder.
        model: The freshly built, unwrapped model.
        model_name: Its registry name (for the message).

    Raises:
        ValueError: If the checkpoint was made for another model or other overrides.
    """
    from safetensors import safe_open

    saved = read_trainer_state(path).get("model", {})
    weights = Path(path) / _WEIGHTS_FILE
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found: dict[str, tuple[int, ...]] = {}
    if weights.is_file():
        with safe_open(str(weights), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    if found == expected:
        return
    differing = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
    raise ValueError(
        f"checkpoint {path} was saved for model {saved.get('name')!r} with overrides "
        f"{saved.get('overrides')}, but this run builds {model_name!r}; "
        f"{len(expected.keys() - found.keys())} tensors missing, "
        f"{len(found.keys() - expected.keys())} unexpected, {len(differing)} of another shape "
        f"(e.g. {(differing or sorted(expected.keys() ^ found.keys()))[:3]}). "
        "Fix: pass the same --model/--model-overrides as that run, or use a new --output_dir "
        "without --resume_from_checkpoint"
    )
