"""The saved-model format: ``model.safetensors`` + ``config.json`` in one folder.

``config.json`` holds a format marker and version, the treeattn version, the model's name, its
architecture (``columnar`` | ``unet``) and every hyper-parameter, so a model is rebuilt exactly
without the registry. It also records two SHA-256 digests: of the weights file
(``weights_sha256``) and of the config entry (``config_sha256``), both verified at load, so a
weights file with flipped bytes, or a config edited into another model (``img_mean: null``, patch
sizes that keep every weight shape), is refused instead of silently loaded.

This module is the file format only: it knows configs, not model classes, so the model classes
(``RestorationModel.save_pretrained`` / ``from_pretrained``) and the registry
(:mod:`treeattn.models.registry`, which finds the model class of a saved architecture) both build
on it. Every way a folder can be wrong (missing files, not a treeattn checkpoint, a newer format,
a truncated or edited weights file, an edited config, weights that do not fit the model) raises
:class:`CheckpointError` (a ``ValueError``) or ``FileNotFoundError`` naming the file and the
problem — never a bare ``KeyError``. :func:`write_checkpoint` never overwrites a ``config.json``
that is not a treeattn config.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from treeattn.models.configs import LayerConfig, config_from_dict, config_to_dict
from treeattn.models.provenance import TrainingRecord
from treeattn.validate import check_path

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CheckpointError",
    "SavedWeights",
    "check_digests",
    "check_fit",
    "fit_problems",
    "load_weights",
    "read_record",
    "read_saved",
    "read_weights",
    "write_checkpoint",
]

FORMAT = "treeattn"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint directory exists but cannot be loaded; the message says why."""


@dataclass(frozen=True)
class SavedWeights:
    """A saved model read without building it.

    Attributes:
        path: Its ``save_pretrained`` folder.
        name: The saved model's name (``config.json``'s ``"name"``).
        config: Its architecture's config.
        weights: Its state dict.
        weights_sha256: SHA-256 of ``model.safetensors``.
        training: Its training record (``None`` when saved without one).
    """

    path: Path
    name: str
    config: LayerConfig
    weights: dict[str, torch.Tensor] = field(repr=False)
    weights_sha256: str
    training: TrainingRecord | None


def _version() -> str:
    try:
        return metadata.version("treeattn")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _config_digest(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _refuse_foreign_config(config_path: Path) -> None:
    """Refuse to overwrite a ``config.json`` that another tool wrote."""
    if not config_path.exists():
        return
    try:
        record = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise FileExistsError(
            f"{config_path} exists and is not a treeattn config; save_pretrained will not "
            "overwrite it — save into another directory or remove the file"
        )


def write_checkpoint(
    directory: str | os.PathLike,
    *,
    weights: dict[str, torch.Tensor],
    config: LayerConfig,
    name: str,
    architecture: str,
    training: TrainingRecord | None,
) -> None:
    """Write weights and config to ``directory`` (created if missing).

    Args:
        directory: Target folder; a treeattn checkpoint already there is overwritten.
        weights: The model's state dict.
        config: Its config (every hyper-parameter).
        name: The model's name (``meta.name``).
        architecture: Its architecture name (``columnar`` | ``unet``).
        training: How it was trained, or ``None``.

    Raises:
        TypeError: if ``directory`` is not a path.
        FileExistsError: if ``directory`` holds a ``config.json`` that is not a treeattn config,
            or ``directory`` is a file.
    """
    path = check_path("directory", directory)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; save_pretrained needs a directory")
    _refuse_foreign_config(path / CONFIG_NAME)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in weights.items()}
    save_file(tensors, str(path / WEIGHTS_NAME), metadata={"format": FORMAT})
    values = config_to_dict(config)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "treeattn_version": _version(),
        "name": name,
        "architecture": architecture,
        "config": values,
        "config_sha256": _config_digest(values),
        "weights_sha256": hashlib.sha256((path / WEIGHTS_NAME).read_bytes()).hexdigest(),
    }
    if training is not None:
        record["training"] = training.to_dict()
    (path / CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n")


def read_record(path: Path) -> dict[str, Any]:
    """The checked ``config.json`` of a checkpoint folder (its config not yet parsed).

    Raises:
        FileNotFoundError: The file is missing.
        CheckpointError: It is not JSON, not a treeattn config, of a newer format, or lacks
            an entry (or holds one of the wrong type).
    """
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
    if not isinstance(record["name"], str):
        raise CheckpointError(f'{config_path}: "name" must be a string')
    return record


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of ``path``'s weights file and the SHA-256 of its bytes.

    Raises:
        FileNotFoundError: The file is missing.
        CheckpointError: It cannot be read as safetensors (truncated or corrupt).
    """
    weights_path = path / WEIGHTS_NAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path} is missing (the weights of {path})")
    data = weights_path.read_bytes()
    try:
        tensors = load(data)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{weights_path} cannot be read as safetensors ({error}); the file is truncated or "
            "corrupt — copy or download it again"
        ) from error
    return tensors, hashlib.sha256(data).hexdigest()


def _read_training(record: dict[str, Any], path: Path) -> TrainingRecord | None:
    """The saved training record, or ``None`` for models saved without one."""
    if record.get("training") is None:
        return None
    try:
        return TrainingRecord.from_dict(record["training"])
    except ValueError as error:
        raise CheckpointError(
            f'{path / CONFIG_NAME}: invalid "training" record: {error}'
        ) from error


def read_saved(path: Path, record: dict[str, Any], config_class: type[LayerConfig]) -> SavedWeights:
    """The config, weights and training record of a folder whose :func:`read_record` is
    ``record`` (the digests are compared by :func:`check_digests`).

    Args:
        path: The checkpoint folder.
        record: Its checked ``config.json``.
        config_class: The config class of ``record["architecture"]``.

    Raises:
        FileNotFoundError: The weights file is missing.
        CheckpointError: An invalid config or training record, or unreadable weights.
    """
    try:
        config = config_from_dict(config_class, record["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path / CONFIG_NAME} holds an invalid config: {error}") from error
    training = _read_training(record, path)
    weights, weights_sha256 = read_weights(path)
    return SavedWeights(
        path=path,
        name=record["name"],
        config=config,
        weights=weights,
        weights_sha256=weights_sha256,
        training=training,
    )


def check_digests(record: dict[str, Any], weights_sha256: str, path: Path) -> None:
    """Compare the digests recorded at save time with the files.

    Raises:
        CheckpointError: A digest is missing (the folder was not written by
            ``save_pretrained``), or a file no longer matches its digest.
    """
    missing = [key for key in ("config_sha256", "weights_sha256") if key not in record]
    if missing:
        raise CheckpointError(
            f"{path / CONFIG_NAME} records no {' or '.join(missing)}: it was not written by "
            "save_pretrained — load the weights into a built model yourself and save it with "
            "save_pretrained"
        )
    if record["weights_sha256"] != weights_sha256:
        raise CheckpointError(
            f"{path / WEIGHTS_NAME} does not match the SHA-256 recorded in {CONFIG_NAME}: the "
            "file is corrupt or was edited — copy or download the checkpoint again"
        )
    if record["config_sha256"] != _config_digest(record["config"]):
        raise CheckpointError(
            f'the "config" entry of {path / CONFIG_NAME} was edited after saving (its SHA-256 '
            "no longer matches): it would build another model than the weights were trained "
            "in — restore the original file, or build the model you want and load the weights "
            "into it yourself"
        )


def _first(items: list[str], shown: int = 5) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{items[:shown]}{more}"


def fit_problems(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``weights`` from loading into ``model``, empty when they fit.

    Args:
        model: The model to load into.
        weights: A state dict (e.g. read from a ``model.safetensors``).

    Returns:
        One entry per kind of problem: the count and the first names of the missing keys, the
        unexpected keys and the shape mismatches (``key: file SHAPE vs model SHAPE``).
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{k}: file {tuple(weights[k].shape)} vs model {expected[k]}"
        for k in sorted(set(expected) & set(weights))
        if tuple(weights[k].shape) != expected[k]
    ]
    return [
        f"{len(items)} {label} {_first(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]


def check_fit(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Raise :class:`CheckpointError` listing :func:`fit_problems`, if any."""
    problems = fit_problems(model, weights)
    if problems:
        raise CheckpointError(
            f"the weights in {source} do not fit the model its config describes: "
            + "; ".join(problems)
        )


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy ``weights`` (checked with :func:`fit_problems`) into ``model``."""
    model.load_state_dict(weights)
