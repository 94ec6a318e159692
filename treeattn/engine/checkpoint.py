"""Checkpoints in explicit ``step_N`` folders, written atomically, and their resolution on resume.

A checkpoint is first written by :meth:`accelerate.Accelerator.save_state` into a hidden
``.tmp-step_N`` folder, completed with ``trainer_state.json`` and only then renamed to ``step_N``.
A run killed while saving therefore leaves a ``.tmp-*`` folder that is never taken for ``latest``;
it is removed by the next save.

Every checkpoint lists the SHA-256 of its files in ``checksums.json`` (``trainer_state.json``
included, so an edited step is caught); :func:`verify_checkpoint` checks them before a resume.
Checkpoints written before checksums existed (no ``run_id`` in their state) are still resumed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from treeattn.models import CheckpointError

__all__ = [
    "CHECKSUM_FILE",
    "STATE_FILE",
    "CheckpointError",
    "check_compatible",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_trainer_state",
    "resolve_checkpoint",
    "save_checkpoint",
    "verify_checkpoint",
]

STATE_FILE = "trainer_state.json"
CHECKSUM_FILE = "checksums.json"
_PROGRESS_KEYS = ("step", "epoch", "batch")
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


def _read_state(path: str | Path) -> Any:
    file = Path(path) / STATE_FILE
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file} is not valid JSON ({err}); resume another step_N") from err


def load_checkpoint(accelerator: Accelerator, path: str | Path) -> None:
    """``accelerator.load_state(path)``, with the errors of damaged files as one message.

    Raises:
        CheckpointError: If a file cannot be read (truncated, not a checkpoint file).
    """
    from safetensors import SafetensorError

    damaged = (RuntimeError, EOFError, OSError, KeyError, pickle.UnpicklingError, SafetensorError)
    try:
        accelerator.load_state(str(path))
    except damaged as err:
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded ({type(err).__name__}: {err}); "
            "resume another step_N checkpoint"
        ) from err


def read_trainer_state(path: str | Path) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint folder.

    Raises:
        CheckpointError: If it is not a JSON object with integer ``step``, ``epoch``, ``batch``.
    """
    state = _read_state(path)
    bad = [
        k for k in _PROGRESS_KEYS if not isinstance(state, dict) or type(state.get(k)) is not int
    ]
    if bad:
        raise CheckpointError(
            f"{Path(path) / STATE_FILE} lacks integer {bad}; resume another step_N checkpoint"
        )
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_checksums(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUM_FILE)
    sums = {p.relative_to(folder).as_posix(): _sha256(p) for p in files}
    (folder / CHECKSUM_FILE).write_text(json.dumps({"sha256": sums}, indent=2))


def verify_checkpoint(path: str | Path, *, process_index: int = 0) -> dict[str, Any]:
    """Check a checkpoint before resuming it and return its trainer state.

    Checks the SHA-256 of every file listed in ``checksums.json``, that the state's step
    matches the ``step_N`` folder name, and that this process's random state is there
    (without it a resume would silently not be bit-exact). A checkpoint written before run ids
    and checksums (no ``run_id`` in its state) is checked for its step and random state only.

    Args:
        path: Checkpoint folder.
        process_index: This process (its ``random_states_<index>.pkl`` must exist).

    Raises:
        CheckpointError: Naming the damaged or missing file and what to do.
    """
    folder = Path(path)
    state = read_trainer_state(folder)
    match = _STEP_DIR.fullmatch(folder.name)
    if match and int(match.group(1)) != state["step"]:
        raise CheckpointError(
            f"{folder / STATE_FILE} says step {state['step']} but the folder is {folder.name}; "
            "the checkpoint was edited or mixed up: resume another step_N"
        )
    if "run_id" in state:
        sums_file = folder / CHECKSUM_FILE
        if not sums_file.is_file():
            raise CheckpointError(f"{folder} lacks {CHECKSUM_FILE}; resume another step_N")
        for name, expected in json.loads(sums_file.read_text())["sha256"].items():
            file = folder / name
            if not file.is_file():
                raise CheckpointError(f"{folder} lacks {name}; resume another step_N checkpoint")
            if _sha256(file) != expected:
                raise CheckpointError(
                    f"{file} does not match its checksum (damaged or edited); "
                    "resume another step_N checkpoint"
                )
    random_state = folder / f"random_states_{process_index}.pkl"
    if not random_state.is_file():
        raise CheckpointError(
            f"{folder} lacks {random_state.name}, the random state of process {process_index}; "
            "resume with as many processes as the run had, or another step_N"
        )
    return state


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
        _write_checksums(tmp)
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
        CheckpointError: If its weights file is missing or unreadable.
    """
    from safetensors import SafetensorError, safe_open

    state = _read_state(path)
    saved = state.get("model", {}) if isinstance(state, dict) else {}
    weights = Path(path) / _WEIGHTS_FILE
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if not weights.is_file():
        raise CheckpointError(f"{path} lacks {_WEIGHTS_FILE}; resume another step_N checkpoint")
    try:
        with safe_open(str(weights), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{weights} cannot be read ({err}); resume another step_N checkpoint"
        ) from err
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
