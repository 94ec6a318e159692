"""Save and load models: ``model.safetensors`` + ``config.json`` in one directory.

``config.json`` holds a format marker and version, the treeattn version, the registry name, the
architecture (``columnar`` | ``unet``) and every hyper-parameter, so :func:`from_pretrained`
rebuilds the exact model without the registry. It also records two SHA-256 digests: of the weights
file (``weights_sha256``) and of the config entry (``config_sha256``), both verified at load, so a
weights file with flipped bytes, or a config edited into another model (``img_mean: null``, patch
sizes that keep every weight shape), is refused instead of silently loaded. Configs written before
the digests existed hold none and load as before.

Every way a checkpoint can be wrong (missing files, not a treeattn checkpoint, a newer format, a
truncated or edited weights file, an edited config, weights that do not fit the config) raises
:class:`CheckpointError` (a ``ValueError``) or ``FileNotFoundError`` naming the file and the
problem — never a bare ``KeyError``. :func:`save_pretrained` never overwrites a ``config.json`` that
is not a treeattn config.

:func:`read_pretrained` reads and verifies a saved model without building it (the weights to
start a training run from, ``--init-from``); :func:`fit_problems` and :func:`load_weights` are the
fit check and the load that :func:`from_pretrained` applies.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from treeattn.models.architectures import (
    ARCHITECTURES,
    architecture_name,
    build_model,
    model_architecture,
)
from treeattn.models.configs import LayerConfig, config_from_dict, config_to_dict
from treeattn.models.pretrained import list_pretrained, pretrained_path
from treeattn.models.provenance import TrainingRecord
from treeattn.validate import check_device, check_path

if TYPE_CHECKING:
    from treeattn.models.base import RestorationModel

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CheckpointError",
    "SavedWeights",
    "fit_problems",
    "from_pretrained",
    "load_weights",
    "read_pretrained",
    "read_weights",
    "save_pretrained",
]

FORMAT = "treeattn"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint directory exists but cannot be loaded; the message says why."""


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


def save_pretrained(model: RestorationModel, directory: str | os.PathLike) -> None:
    """Write ``model``'s weights and full config to ``directory`` (created if missing).

    Args:
        model: A treeattn model (built by :func:`~treeattn.models.create_model` or from a config).
        directory: Target directory; a treeattn checkpoint already there is overwritten.

    Raises:
        TypeError: if ``model`` is not a treeattn model, or ``directory`` not a path.
        FileExistsError: if ``directory`` holds a ``config.json`` that is not a treeattn config,
            or ``directory`` is a file.
    """
    try:
        model_architecture(model)
    except TypeError as error:
        raise TypeError(f"save_pretrained {error}") from None
    path = check_path("directory", directory)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; save_pretrained needs a directory")
    _refuse_foreign_config(path / CONFIG_NAME)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path / WEIGHTS_NAME), metadata={"format": FORMAT})
    config = config_to_dict(model.config)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "treeattn_version": _version(),
        "name": model.meta.name,
        "architecture": architecture_name(model.config),
        "config": config,
        "config_sha256": _config_digest(config),
        "weights_sha256": hashlib.sha256((path / WEIGHTS_NAME).read_bytes()).hexdigest(),
    }
    if model.provenance is not None:
        record["training"] = model.provenance.to_dict()
    (path / CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n")


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
    if not isinstance(record["name"], str):
        raise CheckpointError(f'{config_path}: "name" must be a string')
    if record["architecture"] not in ARCHITECTURES:
        raise CheckpointError(
            f"{config_path} names architecture {record['architecture']!r}; known: "
            f"{list(ARCHITECTURES)}"
        )
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


def _check_digests(record: dict[str, Any], weights_sha256: str, path: Path) -> None:
    """Compare the digests recorded at save time (absent in older configs: nothing to check)."""
    recorded = record.get("weights_sha256")
    if recorded is not None and recorded != weights_sha256:
        raise CheckpointError(
            f"{path / WEIGHTS_NAME} does not match the SHA-256 recorded in {CONFIG_NAME}: the "
            "file is corrupt or was edited — copy or download the checkpoint again"
        )
    recorded = record.get("config_sha256")
    if recorded is not None and recorded != _config_digest(record["config"]):
        raise CheckpointError(
            f'the "config" entry of {path / CONFIG_NAME} was edited after saving (its SHA-256 '
            "no longer matches): it would build another model than the weights were trained "
            "in — restore the original file, or build the model you want and load the weights "
            "into it yourself"
        )


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


def _saved_before(key: str) -> bool:
    """State that older checkpoints lack: residual-branch scales (see ``layers.residual``), which
    the config's init scheme sets in the freshly built model."""
    return key.endswith(".scale")


def fit_problems(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``weights`` from loading into ``model``, empty when they fit.

    Args:
        model: The model to load into.
        weights: A state dict (e.g. read from a ``model.safetensors``).

    Returns:
        One entry per kind of problem: the count and the first names of the missing keys, the
        unexpected keys and the shape mismatches (``key: file SHAPE vs model SHAPE``).
        Residual-branch scales that older files lack are not missing (see :func:`load_weights`).
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(k for k in set(expected) - set(weights) if not _saved_before(k))
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


def _check_fit(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    problems = fit_problems(model, weights)
    if problems:
        raise CheckpointError(
            f"the weights in {source} do not fit the model its config describes: "
            + "; ".join(problems)
        )


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy ``weights`` (checked with :func:`fit_problems`) into ``model``.

    Residual-branch scales that older files lack keep the values the model's config set.
    """
    weights = dict(weights)
    for key, value in model.state_dict().items():
        if _saved_before(key):
            weights.setdefault(key, value)
    model.load_state_dict(weights)


def _resolve(directory: str | os.PathLike) -> Path:
    """A checkpoint folder, or the folder of the shipped pretrained model of that name."""
    path = check_path("directory", directory)
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
        TypeError: if ``directory`` is not a path or name (e.g. ``None``).
        ValueError: if ``device`` is not available here, or is ``meta`` (which holds no
            weights; build with ``create_model(..., device="meta")`` for shapes).
        FileNotFoundError: if the directory (and no shipped model of that name) or one of its two
            files is missing.
        CheckpointError: if the config is not a treeattn config, of a newer format, or invalid,
            if the weights file is truncated or corrupt, if the weights do not fit the config
            (missing, unexpected or shape-mismatched keys, all listed), or if either file no
            longer matches the digest recorded when it was saved.
    """
    path = _resolve(directory)
    check_device("device", device, allow_meta=False)  # meta would drop the weights silently
    record, config, weights, weights_sha256 = _read_saved(path)
    model = build_model(config, name=record["name"], device=device, dtype=dtype)
    _check_fit(model, weights, path / WEIGHTS_NAME)
    _check_digests(record, weights_sha256, path)
    load_weights(model, weights)
    model.provenance = _read_provenance(record, path)
    return model.eval()


def _read_saved(
    path: Path,
) -> tuple[dict[str, Any], LayerConfig, dict[str, torch.Tensor], str]:
    """The record, config, weights and weights digest of a folder (digests not yet compared)."""
    record = _read_record(path)
    config_cls, _ = ARCHITECTURES[record["architecture"]]
    try:
        config = config_from_dict(config_cls, record["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path / CONFIG_NAME} holds an invalid config: {error}") from error
    weights, weights_sha256 = read_weights(path)
    return record, config, weights, weights_sha256


@dataclass(frozen=True)
class SavedWeights:
    """A saved model read without building it (see :func:`read_pretrained`).

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


def read_pretrained(directory: str | os.PathLike) -> SavedWeights:
    """Read and verify a model saved by :func:`save_pretrained` without building it.

    The same checks as :func:`from_pretrained` except the fit to a model: the config, the
    weights file, both recorded digests and the training record.

    Args:
        directory: The checkpoint directory, or the name of a shipped pretrained model.

    Raises:
        FileNotFoundError: As :func:`from_pretrained`.
        CheckpointError: As :func:`from_pretrained` (the fit to a model is the caller's).
    """
    path = _resolve(directory)
    record, config, weights, weights_sha256 = _read_saved(path)
    _check_digests(record, weights_sha256, path)
    return SavedWeights(
        path=path,
        name=record["name"],
        config=config,
        weights=weights,
        weights_sha256=weights_sha256,
        training=_read_provenance(record, path),
    )
