"""``--init-from``: start a run from trained weights (the weights only).

The source is, in this order: a run's ``step_N`` checkpoint (its ``model.safetensors``), a
``save_pretrained`` folder, a run folder (its ``model/``) or the name of a shipped model. It is read
and verified before anything is trained, with the checks of
:func:`treeattn.models.from_pretrained` (the digests recorded at save time) or, for a checkpoint,
of a resume (``checksums.json``).

Without ``--model`` (left at the task's default) the run takes the source's architecture: its
registry name and the settings in which the saved config differs from that name's (for a model
saved under a name the registry lacks: from the closest registered config of its architecture).
``--model-overrides`` apply on top, so settings that own no weights may change — the continuous
position bias has no tensor tied to the patch sizes. The task and ``--channels`` still set the
model's task and channels. Weights that do not fit the built model are one ``ValueError`` naming
the tensors and both configs.

Only the weights are taken: optimizer, schedule, step counter and EMA start fresh (the EMA from
the loaded weights). A resumed checkpoint wins over ``--init-from``: its weights, its architecture
and its record of where the run started (:func:`plan_init`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from treeattn.engine.checkpoint import STATE_FILE, CheckpointError, verify_checkpoint
from treeattn.engine.settings import TrainConfig
from treeattn.engine.task import TaskSpec
from treeattn.models.checkpoint import fit_problems, load_weights, read_weights
from treeattn.models.configs import LayerConfig, config_to_dict
from treeattn.models.provenance import InitRecord
from treeattn.models.registry import list_models, model_config, model_folder, read_pretrained

__all__ = ["InitPlan", "InitSource", "load_init_weights", "plan_init", "read_init_source"]

# Model settings the run sets itself (from the task and --channels), not taken from the source.
_RUN_SET = ("task", "in_chans", "out_chans")


@dataclass(frozen=True)
class InitSource:
    """Verified weights to start from, and the architecture they were trained in.

    Attributes:
        record: What the run's training record says it started from (the source's own record
            nested).
        weights: The state dict.
        model: Registry name the source's architecture starts from.
        overrides: The source's settings that differ from ``model``'s (JSON values; task and
            channels left out).
        config: The source's architecture, for messages (every setting when known).
    """

    record: InitRecord
    weights: dict[str, torch.Tensor] = field(repr=False)
    model: str
    overrides: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class InitPlan:
    """What :func:`plan_init` decided.

    Attributes:
        cfg: The run's settings: the architecture it builds and the ``init_from`` it records.
        source: Weights to load into the built model (``None``: none, or a resume).
        record: Where the run started, for its training record (``None``: random weights).
        notice: One line for the start (``""`` when there is nothing to say).
    """

    cfg: TrainConfig
    source: InitSource | None = None
    record: InitRecord | None = None
    notice: str = ""


def _plain(values: Any) -> Any:
    """JSON form: lists instead of tuples, so configs compare as they are stored."""
    return json.loads(json.dumps(values))


def _settings_differing(config: dict[str, Any], name: str) -> dict[str, Any]:
    base = _plain(config_to_dict(model_config(name)))
    return {k: v for k, v in config.items() if k not in _RUN_SET and base.get(k) != v}


def _registered_base(config: LayerConfig, name: str) -> tuple[str, dict[str, Any]]:
    """Registry name and overrides that build ``config`` (task and channels aside)."""
    saved = _plain(config_to_dict(config))
    names = [n for n in list_models() if type(model_config(n)) is type(config)]
    if name not in names:
        name = min(names, key=lambda n: (len(_settings_differing(saved, n)), n))
    return name, _settings_differing(saved, name)


def _checkpoint_config(model: str, overrides: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The architecture a checkpoint's run built, as far as its trainer state records it."""
    settings = settings if isinstance(settings, dict) else {}
    channels, views = settings.get("channels"), 2 if settings.get("dual_pixel") else 1
    chans = {"in_chans": channels * views, "out_chans": channels} if channels else {}
    try:
        config = dataclasses.replace(model_config(model), **{**chans, **overrides})
    except (TypeError, ValueError):  # not a registry model (a custom model_fn)
        return {"model": model, "model_overrides": overrides, **chans}
    return _plain(config_to_dict(config))


def _from_checkpoint(source: str, path: Path) -> InitSource:
    try:
        state = verify_checkpoint(path)
    except CheckpointError as err:
        raise CheckpointError(f"--init-from {source}: {err}") from err
    try:
        weights, weights_sha256 = read_weights(path)
    except (FileNotFoundError, CheckpointError) as err:
        raise CheckpointError(f"--init-from {source}: {err}; use another step_N") from err
    saved = state.get("model") if isinstance(state.get("model"), dict) else {}
    model, overrides = str(saved.get("name", "unknown")), dict(saved.get("overrides") or {})
    record = InitRecord(
        source=source,
        kind="checkpoint",
        model=model,
        weights_sha256=weights_sha256,
    )
    config = _checkpoint_config(model, overrides, state.get("settings"))
    return InitSource(
        record=record, weights=weights, model=model, overrides=overrides, config=config
    )


def read_init_source(source: str) -> InitSource:
    """Read and verify the weights ``--init-from`` names.

    Args:
        source: A ``step_N`` checkpoint folder, a ``save_pretrained`` folder, a run folder (its
            ``model/``) or a shipped model's name.

    Raises:
        FileNotFoundError: A folder that holds no model (the message suggests ``RUN/step_N``).
        ValueError: An empty source, a file, or a name that is neither a folder nor a shipped
            model.
        CheckpointError: Weights or config that fail their checksums or cannot be read.
    """
    if not isinstance(source, str) or not source:
        raise ValueError(
            f"--init-from {source!r} must name a shipped model, a save_pretrained folder, a "
            "run folder or RUN/step_N"
        )
    path = Path(source)
    if (path / STATE_FILE).is_file():
        return _from_checkpoint(source, path)
    try:
        folder = model_folder(source)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"--init-from {source}: {err}; to start from one of its checkpoints pass RUN/step_N"
        ) from err
    except ValueError as err:
        raise ValueError(f"--init-from {source}: {err}") from err
    saved = read_pretrained(folder)
    kind = "shipped" if not path.exists() else "run" if folder != path else "folder"
    model, overrides = _registered_base(saved.config, saved.name)
    record = InitRecord(
        source=source,
        kind=kind,
        model=saved.name,
        weights_sha256=saved.weights_sha256,
        training=saved.training,
    )
    return InitSource(
        record=record,
        weights=saved.weights,
        model=model,
        overrides=overrides,
        config=_plain(config_to_dict(saved.config)),
    )


def _default_model(spec: TaskSpec) -> str:
    return spec.defaults.get("model", TrainConfig.model)


def plan_init(
    spec: TaskSpec,
    cfg: TrainConfig,
    *,
    state: dict[str, Any] | None,
    derive_model: bool = True,
) -> InitPlan:
    """Decide the architecture and the weights a run starts from (every process, before writing).

    A fresh run with ``--init-from`` reads and verifies the source; with ``--model`` left at the
    task's default it builds the source's architecture, ``--model-overrides`` on top. A resumed
    run (``state`` given) reads no source: the checkpoint's weights win, it keeps the
    ``init_from`` its trainer state recorded, and without ``--model`` builds the checkpoint's
    architecture, so resuming with another (or no) ``--init-from`` is not refused.

    Args:
        spec: The task.
        cfg: The parsed settings.
        state: The verified trainer state of the checkpoint being resumed, if any.
        derive_model: Whether the run builds ``cfg.model`` from the registry (``False`` when the
            caller supplies the model).

    Raises:
        FileNotFoundError, ValueError, CheckpointError: As :func:`read_init_source`.
    """
    take_architecture = derive_model and cfg.model == _default_model(spec)
    if state is not None:
        saved = state.get("init_from")
        record = InitRecord.from_dict(saved) if saved else None
        model = state.get("model")
        if take_architecture and (record or cfg.init_from) and isinstance(model, dict):
            overrides = {**(model.get("overrides") or {}), **cfg.model_overrides}
            cfg = dataclasses.replace(cfg, model=model["name"], model_overrides=overrides)
        notice = ""
        if cfg.init_from is not None:
            started = record.source if record else "random weights"
            notice = (
                f"; its weights win over --init-from {cfg.init_from} (the run started from "
                f"{started})"
            )
        cfg = dataclasses.replace(cfg, init_from=record.source if record else None)
        return InitPlan(cfg=cfg, record=record, notice=notice)
    if cfg.init_from is None:
        return InitPlan(cfg=cfg)
    source = read_init_source(cfg.init_from)
    if take_architecture:
        overrides = {**source.overrides, **cfg.model_overrides}
        cfg = dataclasses.replace(cfg, model=source.model, model_overrides=overrides)
    notice = (
        f"initialised from {source.record.describe()}: weights only (optimizer, schedule, "
        "step and EMA start fresh)"
    )
    return InitPlan(cfg=cfg, source=source, record=source.record, notice=notice)


def _differences(source: dict[str, Any], run: dict[str, Any]) -> list[str]:
    return [
        f"{key} {source[key]} vs {run[key]}"
        for key in source
        if key in run and key not in ("task",) and source[key] != run[key]
    ]


def load_init_weights(model: nn.Module, source: InitSource, *, cfg: TrainConfig) -> None:
    """Load the source's weights into the freshly built (unwrapped) model.

    Raises:
        ValueError: If they do not fit: the missing, unexpected and shape-mismatched tensors
            (counts and the first names), the settings in which the two configs differ and both
            configs, and the fix.
    """
    problems = fit_problems(model, source.weights)
    if not problems:
        load_weights(model, source.weights)
        return
    config = getattr(model, "config", None)
    run = _plain(config_to_dict(config)) if config is not None else {"model": model.meta.name}
    differing = _differences(source.config, run)
    hint = ""
    source_chans = (source.config.get("in_chans"), source.config.get("out_chans"))
    if None not in source_chans and source_chans != (model.meta.in_chans, model.meta.out_chans):
        hint = (
            f" The source maps {source_chans[0]} to {source_chans[1]} channels, this run "
            f"{model.meta.in_chans} to {model.meta.out_chans}: pass --channels "
            f"{source_chans[1]}{' --dual-pixel' if source_chans[0] == 2 * source_chans[1] else ''}."
        )
    raise ValueError(
        f"--init-from {source.record.source}: its weights do not fit the model this run builds "
        f"(--model {cfg.model}, overrides {cfg.model_overrides}): {'; '.join(problems)}. "
        + (f"The configs differ in: {'; '.join(differing)}. " if differing else "")
        + f"Source config ({source.record.model}): {json.dumps(source.config)}. "
        f"This run's config ({model.meta.name}): {json.dumps(run)}.{hint} Fix: build the "
        "source's architecture (leave out --model, and drop --model-overrides that change tensor "
        "shapes; settings such as patch_sizes may differ), or train from scratch without "
        "--init-from"
    )
