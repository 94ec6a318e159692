"""Save and load models: ``model.safetensors`` + ``config.json`` in one directory.

``config.json`` holds a format marker and version, the treeattn version, the registry name, the
architecture (``columnar`` | ``unet``) and every hyper-parameter, so :func:`from_pretrained`
rebuilds the exact model without the registry. Every way a checkpoint can be wrong (missing files,
not a treeattn checkpoint, a newer format, a truncated weights file, weights that do not fit the
config) raises :class:`CheckpointError` (a ``ValueError``) or ``FileNotFoundError`` naming the
problem — never a bare ``KeyError``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import treeattn
from treeattn.models.base import RestorationModel
from treeattn.models.configs import config_from_dict, config_to_dict
from treeattn.models.pretrained import list_pretrained, pretrained_path
from treeattn.models.provenance import TrainingRecord
from treeattn.models.registry import ARCHITECTURES, architecture_name, build_model

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CheckpointError",
    "from_pretrained",
    "save_pretrained",
]

FORMAT = "treeattn"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint directory exists but cannot be loaded; the message says why."""


def save_pretrained(model: RestorationModel, directory: str | os.PathLike) -> None:
    """Write ``model``'s weights and full config to ``directory`` (created if missing).

    Args:
        model: A treeattn model (built by :func:`~treeattn.models.create_model` or from a config).
        directory: Target directory; existing files of the same names are overwritten.
    """
    if not isinstance(model, RestorationModel):
        raise TypeError(f"save_pretrained needs a treeattn model, got {type(model).__name__}")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "treeattn_version": treeattn.__version__,
        "name": model.meta.name,
        "architecture": architecture_name(model.config),
        "config": config_to_dict(model.config),
    }
    if model.provenance is not None:
        record["training"] = model.provenance.to_dict()
    (path / CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n")
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path / WEIGHTS_NAME), metadata={"format": FORMAT})


def _read_record(path: Path) -> dict[str, Any]:
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} is missing; a treeattn checkpoint directory holds {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} (written by save_pretrained)"
        )
    try:
        record = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_path} is not valid JSON ({error})") from error
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(
            f'{config_path} is not a treeattn checkpoint config (no "format": "{FORMAT}" '
            "marker); save models with treeattn.models.save_pretrained"
        )
    version = record.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path} has format_version={version!r}; this treeattn reads up to "
            f"{FORMAT_VERSION} — upgrade treeattn"
        )
    missing = [key for key in ("architecture", "config", "name") if key not in record]
    if missing:
        raise CheckpointError(f"{config_path} lacks the entries {missing}")
    if not isinstance(record["config"], dict):
        raise CheckpointError(f'{config_path}: "config" must be an object of settings')
    if record["architecture"] not in ARCHITECTURES:
        raise CheckpointError(
            f"{config_path} names architecture {record['architecture']!r}; known: "
            f"{list(ARCHITECTURES)}"
        )
    return record


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    weights_path = path / WEIGHTS_NAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path} is missing (the weights of {path})")
    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(
            f"{weights_path} cannot be read as safetensors ({error}); the file is truncated or "
            "corrupt — copy or download it again"
        ) from error


def _read_provenance(record: dict[str, Any], path: Path) -> TrainingRecord | None:
    """The saved training record, or ``None`` for checkpoints written without one."""
    if record.get("training") is None:
        return None
    try:
        return TrainingRecord.from_dict(record["training"])
    except ValueError as error:
        raise CheckpointError(
            f'{path / CONFIG_NAME}: invalid "training" record: {error}'
        ) from error


def _first(items: list[str], shown: int = 5) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{items[:shown]}{more}"


def _check_fit(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{k}: file {tuple(weights[k].shape)} vs model {expected[k]}"
        for k in sorted(set(expected) & set(weights))
        if tuple(weights[k].shape) != expected[k]
    ]
    problems = [
        f"{len(items)} {label} {_first(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        raise CheckpointError(
            f"the weights in {source} do not fit the model its config describes: "
            + "; ".join(problems)
        )


def _resolve(directory: str | os.PathLike) -> Path:
    """A checkpoint folder, or the folder of the shipped pretrained model of that name."""
    path = Path(directory)
    if path.is_dir():
        return path
    if isinstance(directory, str) and directory in list_pretrained():
        return pretrained_path(directory)
    raise FileNotFoundError(
        f"checkpoint directory {path} does not exist, and no shipped pretrained model has that "
        f"name (shipped: {list_pretrained()}; `treeattn list --pretrained`)"
    )


def from_pretrained(
    directory: str | os.PathLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RestorationModel:
    """Rebuild a model saved by :func:`save_pretrained`.

    Args:
        directory: The checkpoint directory, or the name of a shipped pretrained model (see
            :func:`~treeattn.models.list_pretrained`); an existing directory wins over a name.
        device: Where to put the parameters (default: CPU).
        dtype: Parameter dtype (default: float32; saved weights are cast to it).

    Returns:
        The model, in eval mode, with the saved weights, ``meta.name`` of the saved model and
        ``provenance``, the saved :class:`~treeattn.models.provenance.TrainingRecord` (``None``
        for checkpoints saved without one).

    Raises:
        FileNotFoundError: if the directory (and no shipped model of that name) or one of its two
            files is missing.
        CheckpointError: if the config is not a treeattn config, of a newer format, or invalid,
            if the weights file is truncated or corrupt, or if the weights do not fit the config
            (missing, unexpected or shape-mismatched keys, all listed).
    """
    path = _resolve(directory)
    record = _read_record(path)
    config_cls, _ = ARCHITECTURES[record["architecture"]]
    try:
        config = config_from_dict(config_cls, record["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path / CONFIG_NAME} holds an invalid config: {error}") from error
    weights = _read_weights(path)
    model = build_model(config, name=str(record["name"]), device=device, dtype=dtype)
    _check_fit(model, weights, path / WEIGHTS_NAME)
    model.load_state_dict(weights)
    model.provenance = _read_provenance(record, path)
    return model.eval()
