"""The run folder: one run per ``--output-dir``, its identity, and the settings that define it.

A run writes ``run.json`` (a run id made at the run's start, the task and the settings that define
what is trained) and ``config.yaml`` (every resolved setting, readable by ``--config``) into its
folder; each checkpoint carries the same run id and settings. :func:`plan_run` decides, before
anything is written, whether a run may use a folder:

* a folder holding another run is refused unless the user resumes it or passes ``--overwrite``
  (which clears what runs write — :data:`RUN_FILES`, :data:`RUN_FOLDERS`, checkpoints and
  tensorboard folders — and is refused, naming them, when the folder holds anything else);
* a resumed checkpoint must belong to the folder's run and be resumed with the same defining
  settings (:data:`RUN_SETTINGS`) — the message names each changed setting;
* checkpoints written before run ids existed are resumed with a one-line notice.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treeattn.engine.settings import TrainConfig
from treeattn.validate import make_writable_dir

__all__ = [
    "CONFIG_FILE",
    "RUN_FILE",
    "RUN_FILES",
    "RUN_FOLDERS",
    "RUN_SETTINGS",
    "RunPlan",
    "check_output_dir",
    "clear_run",
    "foreign_entries",
    "holds_run",
    "plan_run",
    "read_run",
    "run_settings",
    "setting_changes",
    "write_run",
]

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"

#: Settings that define what a run trains; resuming with any of them changed is an error. Left
#: out on purpose: test sets, validation, logging, checkpoint cadence, time budget, threads,
#: device choice and the output folder itself.
RUN_SETTINGS = (
    "train_dir",
    "train_lq",
    "train_gt",
    "channels",
    "level",
    "dual_pixel",
    "patch_size",
    "patch_schedule",
    "batch_size",
    "repeat",
    "model",
    "model_overrides",
    "max_steps",
    "optimizer",
    "lr",
    "weight_decay",
    "betas",
    "scheduler",
    "warmup_steps",
    "min_lr_ratio",
    "milestones",
    "gamma",
    "loss",
    "perceptual_weight",
    "ema_decay",
    "grad_clip",
    "gradient_accumulation_steps",
    "seed",
)
_STEP_DIR = re.compile(r"(\.tmp-)?step_\d+")  # checkpoints, complete or not
#: Files a run writes at the top of its folder (``<kind>.csv`` for the logged kinds).
RUN_FILES = frozenset({RUN_FILE, CONFIG_FILE, "log.jsonl", "train.csv", "val.csv"})
#: Folders a run writes besides its checkpoints and tensorboard folder.
RUN_FOLDERS = frozenset({"samples", "report", "model", "synthetic"})
_TENSORBOARD_FILE = re.compile(r"events\.out\.tfevents\..*|hparams\.yml")
_MAX_NAMED = 10
_PATHS = ("train_dir", "train_lq", "train_gt")  # compared as absolute paths
_LEGACY_MODEL = {"model": "name", "model_overrides": "overrides"}  # trainer_state["model"] keys


def check_output_dir(path: str | Path) -> None:
    """Create ``path`` if needed and make sure the run can write there.

    Raises:
        ValueError: If ``path`` is a file, or cannot be created or written (the OS reason).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output-dir {folder} is a file; give a folder (new or empty)")
    make_writable_dir("--output-dir", folder)


def _normalise(name: str, value: Any) -> Any:
    if name in _PATHS and value:
        paths = value if isinstance(value, list) else [value]
        resolved = [str(Path(p).resolve()) for p in paths]
        return resolved if isinstance(value, list) else resolved[0]
    return value


def run_settings(
    cfg: TrainConfig, *, task: str, mixed_precision: str, num_processes: int
) -> dict[str, Any]:
    """The defining settings of a run, as stored in ``run.json`` and every checkpoint.

    Args:
        cfg: The run's settings.
        task: The task name.
        mixed_precision: The precision the accelerator resolved (``no``, ``bf16``, ``fp16``).
        num_processes: Processes of the run (the batch and data order depend on it).
    """
    values = {name: _normalise(name, getattr(cfg, name)) for name in RUN_SETTINGS}
    values.update(task=task, mixed_precision=mixed_precision, num_processes=num_processes)
    return json.loads(json.dumps(values))  # the JSON form: lists, not tuples


def setting_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"name SAVED -> CURRENT"`` for every setting that differs (missing ones are skipped)."""
    return [
        f"{name} {saved[name]!r} -> {current[name]!r}"
        for name in current
        if name in saved and saved[name] != current[name]
    ]


def read_run(output_dir: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of a folder, or ``None`` when there is none.

    Raises:
        ValueError: If the file is not a JSON object with a ``run_id``.
    """
    path = Path(output_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); restore it or pass --overwrite"
        ) from err
    if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
        raise ValueError(f"{path} has no run_id; restore it or pass --overwrite")
    return record


def write_run(output_dir: str | Path, *, run_id: str, settings: dict[str, Any]) -> None:
    """Write ``run.json`` (main process only)."""
    record = {"run_id": run_id, "settings": settings}
    (Path(output_dir) / RUN_FILE).write_text(json.dumps(record, indent=2))


def holds_run(output_dir: str | Path) -> bool:
    """Whether a folder holds results of a training run: its log or checkpoints."""
    root = Path(output_dir)
    if not root.is_dir():
        return False
    return any(
        p.name == "log.jsonl" or (p.is_dir() and _STEP_DIR.fullmatch(p.name) is not None)
        for p in root.iterdir()
    )


def _is_tensorboard(folder: Path) -> bool:
    """Whether a folder holds tensorboard logs only (what accelerate's tracker writes)."""
    files = [p for p in folder.rglob("*") if not p.is_dir()]
    return bool(files) and all(_TENSORBOARD_FILE.fullmatch(p.name) for p in files)


def _written_by_run(path: Path) -> bool:
    """Whether a top-level entry of a run folder is one a run writes."""
    if path.is_symlink():
        return False
    if path.is_dir():
        return (
            path.name in RUN_FOLDERS
            or _STEP_DIR.fullmatch(path.name) is not None
            or _is_tensorboard(path)
        )
    return path.name in RUN_FILES


def foreign_entries(output_dir: str | Path) -> list[Path]:
    """The top-level entries of a folder that no run writes (the user's own files), sorted."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not _written_by_run(p))


def clear_run(output_dir: str | Path) -> None:
    """Remove what runs write in a folder (``--overwrite``; main process only).

    Only the entries a run writes are removed (:func:`foreign_entries` are kept);
    :func:`plan_run` refuses ``--overwrite`` on a folder that holds any others.
    """
    for path in Path(output_dir).iterdir():
        if not _written_by_run(path):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


@dataclass(frozen=True)
class RunPlan:
    """What :func:`plan_run` decided.

    Attributes:
        run_id: The run's id (new, the folder's, or the checkpoint's).
        clear: Clear the folder first (``--overwrite``).
        write_run: Write ``run.json`` (a new run, or a folder that had none).
        notices: One-line messages for the user.
    """

    run_id: str
    clear: bool = False
    write_run: bool = True
    notices: tuple[str, ...] = ()


def _changed(changes: list[str], *, what: str, output_dir: str) -> ValueError:
    config = Path(output_dir) / CONFIG_FILE
    return ValueError(
        f"{what} was trained with other settings: {'; '.join(changes)}. "
        f"Fix: resume with the run's settings (all of them are in {config}: "
        f"--config {config} --resume-from-checkpoint latest), or start a new run with another "
        "--output-dir (or --overwrite to replace this one)"
    )


def _legacy_settings(state: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint of before run ids says about its run: task, model and overrides."""
    model = state.get("model", {})
    saved = {name: model[key] for name, key in _LEGACY_MODEL.items() if key in model}
    return {**saved, "task": state["task"]} if "task" in state else saved


def _refuse_foreign(output_dir: str) -> None:
    """Refuse ``--overwrite`` of a folder that holds entries no run writes (naming them)."""
    foreign = foreign_entries(output_dir)
    if foreign:
        named = ", ".join(p.name + ("/" if p.is_dir() else "") for p in foreign[:_MAX_NAMED])
        more = f" and {len(foreign) - _MAX_NAMED} more" if len(foreign) > _MAX_NAMED else ""
        raise ValueError(
            f"--overwrite would clear the run in {output_dir}, but the folder also holds "
            f"{len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} no run writes: "
            f"{named}{more}. Fix: move them out of {output_dir}, or choose a new "
            "--output-dir (nothing was removed)"
        )


def plan_run(
    cfg: TrainConfig,
    *,
    settings: dict[str, Any],
    checkpoint: Path | None,
    state: dict[str, Any] | None,
) -> RunPlan:
    """Decide the run id, or refuse a folder that would mix runs (every process, before writing).

    Args:
        cfg: The run's settings (``output_dir``, ``resume_from_checkpoint``, ``overwrite``).
        settings: This run's defining settings (:func:`run_settings`).
        checkpoint: The checkpoint to resume, if any.
        state: Its verified trainer state.

    Raises:
        ValueError: The folder holds another run, or the checkpoint belongs to another run or
            to other settings, or ``--overwrite`` meets files no run writes (named).
    """
    output_dir = cfg.output_dir
    existing = None if cfg.overwrite else read_run(output_dir)  # --overwrite: even a broken one
    if checkpoint is not None and state is not None:
        return _plan_resume(
            cfg, settings=settings, checkpoint=checkpoint, state=state, existing=existing
        )
    new_id = uuid.uuid4().hex
    if not holds_run(output_dir):  # no results of a run (a run.json alone is replaced)
        notices = ()
        if cfg.resume_from_checkpoint:
            notices = (f"no checkpoint in {output_dir} yet: starting at step 0",)
        return RunPlan(run_id=new_id, notices=notices)
    if existing is not None and cfg.resume_from_checkpoint:  # killed before its first checkpoint
        changes = setting_changes(existing.get("settings", {}), settings)
        if changes:
            raise _changed(changes, what=f"the run in {output_dir}", output_dir=output_dir)
        notice = f"no checkpoint of the run in {output_dir} yet: starting it again at step 0"
        return RunPlan(run_id=existing["run_id"], write_run=False, notices=(notice,))
    if cfg.overwrite:
        _refuse_foreign(output_dir)
        return RunPlan(run_id=new_id, clear=True, notices=(f"--overwrite: cleared {output_dir}",))
    what = f"run {existing['run_id']}" if existing else "a run"
    if cfg.resume_from_checkpoint:
        raise ValueError(
            f"--output-dir {output_dir} holds {what} but no complete checkpoint to resume. "
            "Fix: start it over with --overwrite (instead of --resume-from-checkpoint), "
            "or choose a new --output-dir"
        )
    raise ValueError(
        f"--output-dir {output_dir} already holds {what} (checkpoints or logs). Fix: resume it "
        "with --resume-from-checkpoint latest, replace it with --overwrite, or choose a new "
        "--output-dir"
    )


def _plan_resume(
    cfg: TrainConfig,
    *,
    settings: dict[str, Any],
    checkpoint: Path,
    state: dict[str, Any],
    existing: dict[str, Any] | None,
) -> RunPlan:
    output_dir = cfg.output_dir
    saved_id = state.get("run_id")
    elsewhere = checkpoint.resolve().parent != Path(output_dir).resolve()
    if existing is None and elsewhere and holds_run(output_dir):
        raise ValueError(
            f"--output-dir {output_dir} holds another run than checkpoint {checkpoint}. Fix: "
            "resume into the checkpoint's own folder, or pass a new (empty) --output-dir"
        )
    if saved_id is None:  # written before run ids: compare what it recorded
        saved = existing.get("settings", {}) if existing else _legacy_settings(state)
        changes = setting_changes(saved, settings)
        if changes:
            raise _changed(changes, what=f"checkpoint {checkpoint}", output_dir=output_dir)
        notice = (
            f"{checkpoint} predates run ids and checksums: resuming it without verifying them "
            "(its later checkpoints will carry both)"
        )
        run_id = existing["run_id"] if existing else uuid.uuid4().hex
        return RunPlan(run_id=run_id, write_run=existing is None, notices=(notice,))
    if existing is not None and existing["run_id"] != saved_id:
        raise ValueError(
            f"checkpoint {checkpoint} belongs to run {saved_id}, but --output-dir {output_dir} "
            f"holds run {existing['run_id']}. Fix: resume that run's checkpoint with its own "
            "--output-dir, or pass another (empty) --output-dir to continue it there"
        )
    changes = setting_changes(state.get("settings", {}), settings)
    if changes:
        raise _changed(changes, what=f"checkpoint {checkpoint}", output_dir=output_dir)
    return RunPlan(run_id=saved_id, write_run=existing is None)
