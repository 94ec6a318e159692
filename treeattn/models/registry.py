"""The model registry: every name a model goes by, and the one way to get the model.

Three tables, all here:

* :data:`ARCHITECTURES` — architecture name (stored in checkpoints) → config class and model
  class, listing the model classes explicitly;
* the registered names → config (the named variants of :mod:`treeattn.models.variants`, plus
  those added with :func:`register_model`); the config's class picks the architecture;
* the shipped trained models → their folders inside the package (:data:`PRETRAINED_ROOT`).

and the entry points built on them: :func:`create_model` (a registered name, fresh, or a shipped
name with ``pretrained=True``), :func:`load_model` (a saved folder, a recipe run folder or a
shipped name), :func:`from_pretrained` / :func:`read_pretrained` (a saved folder or a shipped
name) and :func:`save_pretrained`. The file format is :mod:`treeattn.models.checkpoint`.

Example:
    >>> from treeattn.models import create_model, list_models
    >>> list_models("hiir_b_sr_x?")
    ['hiir_b_sr_x2', 'hiir_b_sr_x3', 'hiir_b_sr_x4']
    >>> model = create_model("hiir_sr_tiny_x2", dim=16, depths=(1,))
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from treeattn.models.base import RestorationModel
from treeattn.models.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    SavedWeights,
    check_digests,
    read_record,
    read_saved,
)
from treeattn.models.columnar import HiIRColumnar
from treeattn.models.configs import LayerConfig
from treeattn.models.names import did_you_mean
from treeattn.models.unet import HiIRUNet
from treeattn.models.variants import NAMED_CONFIGS
from treeattn.validate import check_bool, check_device, check_path, check_str

__all__ = [
    "ARCHITECTURES",
    "PRETRAINED_ROOT",
    "RUN_MODEL_FOLDER",
    "PretrainedInfo",
    "architecture_name",
    "build_model",
    "create_model",
    "from_pretrained",
    "list_models",
    "list_pretrained",
    "load_model",
    "model_architecture",
    "model_config",
    "model_folder",
    "pretrained_info",
    "pretrained_path",
    "read_pretrained",
    "register_architecture",
    "register_model",
    "save_pretrained",
]

#: Architecture name → (config class, model class).
ARCHITECTURES: dict[str, tuple[type[LayerConfig], type[RestorationModel]]] = {
    model_cls.architecture: (model_cls.config_class, model_cls)
    for model_cls in (HiIRColumnar, HiIRUNet)
}

# Registered model name → config.
_REGISTRY: dict[str, LayerConfig] = dict(NAMED_CONFIGS)

#: Where the shipped weights live (inside the installed package): one ``save_pretrained`` folder
#: per model, named as the model, with its model card (``README.md``), training curves and
#: ``benchmark.json``. Adding a model is adding a folder.
PRETRAINED_ROOT = Path(__file__).resolve().parents[1] / "pretrained"
BENCHMARK_NAME = "benchmark.json"

#: Where a recipe run folder keeps its final model (written by the final report).
RUN_MODEL_FOLDER = "model"


def register_architecture(
    name: str, config_cls: type[LayerConfig], model_cls: type[RestorationModel]
) -> None:
    """Add a model class to :data:`ARCHITECTURES` (the built-in ones are listed there).

    Raises:
        ValueError: if ``model_cls`` does not name itself ``name`` (``class M(RestorationModel,
            architecture=name)``) with ``config_cls`` as its ``config_class``, or if ``name``
            or ``config_cls`` already belongs to another model class.
    """
    if model_cls.architecture != name or model_cls.config_class is not config_cls:
        raise ValueError(
            f"{model_cls.__name__} must declare architecture={name!r} and "
            f"config_class={config_cls.__name__} to be registered under {name!r}"
        )
    for known, (known_config, known_model) in ARCHITECTURES.items():
        if (known == name or known_config is config_cls) and known_model is not model_cls:
            raise ValueError(
                f"architecture {name!r} ({config_cls.__name__}) clashes with {known!r} "
                f"({known_model.__name__}); give each model class its own name and config class"
            )
    ARCHITECTURES[name] = (config_cls, model_cls)


def architecture_name(config: LayerConfig) -> str:
    """The architecture name of a config (``columnar`` or ``unet``).

    Raises:
        TypeError: if ``config`` is not the config of a known architecture.
    """
    for name, (config_cls, _) in ARCHITECTURES.items():
        if type(config) is config_cls:
            return name
    raise TypeError(
        f"{type(config).__name__} is not a model config; use one of "
        f"{[c.__name__ for c, _ in ARCHITECTURES.values()]}"
    )


def model_architecture(model: object) -> str:
    """The architecture name of a model instance.

    Raises:
        TypeError: if ``model`` is not a treeattn model.
    """
    for name, (_, model_cls) in ARCHITECTURES.items():
        if type(model) is model_cls:
            return name
    raise TypeError(f"needs a treeattn model, got {type(model).__name__}")


def build_model(
    config: LayerConfig,
    *,
    name: str = "custom",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RestorationModel:
    """Build the model a config describes (its class picks the architecture).

    Raises:
        TypeError: if ``config`` is not a model config, ``name`` not a string, ``dtype`` not
            a floating-point ``torch.dtype``, or ``device`` not a device name.
        ValueError: if ``device`` is not available here (e.g. ``"cuda"`` on a CPU-only torch).
    """
    _, model_cls = ARCHITECTURES[architecture_name(config)]
    return model_cls(config, name=name, device=device, dtype=dtype)


def register_model(name: str, config: LayerConfig) -> None:
    """Register a named variant.

    Args:
        name: New, unique model name.
        config: Its frozen config (:class:`ColumnarConfig` or :class:`UNetConfig`).

    Raises:
        ValueError: if ``name`` is already registered.
        TypeError: if ``config`` is not a model config.
    """
    check_str("name", name)
    architecture_name(config)
    if name in _REGISTRY:
        raise ValueError(f"a model named {name!r} is already registered; pick another name")
    _REGISTRY[name] = config


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(fnmatch.filter(_REGISTRY, pattern))


def model_config(name: str) -> LayerConfig:
    """The registered config of ``name``.

    Raises:
        ValueError: if no model of that name exists (the message suggests close names, the
            shipped trained models among them).
    """
    check_str("name", name)
    if name not in _REGISTRY:
        hint = did_you_mean(name, registered=_REGISTRY, shipped=list_pretrained())
        raise ValueError(
            f"no model named {name!r}; "
            + (hint or "see treeattn.models.list_models()")
            + " (`treeattn list` shows the architectures, `treeattn list --pretrained` the "
            "shipped trained models)"
        )
    return _REGISTRY[name]


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

    def image_counts(self) -> dict[str, int]:
        """``{test set: images scored}`` in ``benchmark.json`` (a subset, e.g. Urban100's first
        20, shows in the count); sets whose rows do not say are left out."""
        return {
            row["set"]: int(row["images"])
            for row in self.benchmark.get("rows", [])
            if "images" in row
        }


def _shipped_folders() -> dict[str, Path]:
    if not PRETRAINED_ROOT.is_dir():
        return {}
    return {
        path.name: path
        for path in sorted(PRETRAINED_ROOT.iterdir())
        if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file()
    }


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the shipped pretrained models matching a shell-style ``pattern``, sorted."""
    return sorted(fnmatch.filter(_shipped_folders(), pattern))


def pretrained_path(name: str) -> Path:
    """The ``save_pretrained`` folder of a shipped model.

    Raises:
        TypeError: If ``name`` is not a string.
        ValueError: If no shipped model has that name (the message suggests close names).
    """
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str, got {type(name).__name__}")
    folders = _shipped_folders()
    if name not in folders:
        hint = did_you_mean(name, registered=(), shipped=folders)
        raise ValueError(
            f"no shipped pretrained model named {name!r}"
            + (f"; {hint}" if hint else "")
            + f" — shipped: {sorted(folders)} (`treeattn list --pretrained`)"
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


def model_folder(source: str | os.PathLike) -> Path:
    """The ``save_pretrained`` folder a user names by a folder, a run folder or a shipped name.

    ``source`` is, in this order: a folder holding ``config.json`` (``save_pretrained``), a
    recipe run folder whose ``model/`` holds one (e.g. ``outputs/denoise``), or else the name
    of a shipped pretrained model.

    Raises:
        TypeError: for a ``source`` that is not a path or name.
        FileNotFoundError: for a folder that holds no model (e.g. a run still training).
        ValueError: for a file, or a name that is neither a folder nor a shipped model (the
            message suggests close names).
    """
    path = check_path("source", source)
    for folder in (path, path / RUN_MODEL_FOLDER):
        if (folder / CONFIG_NAME).is_file():
            return folder
    if path.is_file():
        raise ValueError(
            f"model {str(path)!r} is a file; pass the folder holding {CONFIG_NAME} (a "
            "save_pretrained folder or a recipe run folder), or a shipped pretrained model name"
        )
    if path.is_dir():
        raise FileNotFoundError(
            f"folder {str(path)!r} holds no model: expected {CONFIG_NAME} there (a save_pretrained "
            f"folder) or in {RUN_MODEL_FOLDER}/ (a recipe run folder; its model is written when "
            "the run finishes)"
        )
    name = str(source)
    if name in list_pretrained():
        return pretrained_path(name)
    if name in list_models():
        raise ValueError(
            f"model {name!r} is an untrained architecture (`treeattn list`), not a trained "
            f"model: train it with a recipe and pass its run folder (e.g. outputs/denoise), or "
            f"use a shipped model: {list_pretrained()}"
        )
    hint = did_you_mean(name, registered=(), shipped=list_pretrained())  # trained ones only
    raise ValueError(
        f"model {name!r} not found: it is not a folder holding {CONFIG_NAME} (save_pretrained), "
        f"not a run folder holding {RUN_MODEL_FOLDER}/{CONFIG_NAME} (e.g. outputs/denoise), nor "
        f"a shipped pretrained model {list_pretrained()} (`treeattn list --pretrained`)"
        + (f"; {hint}" if hint else "")
    )


def _saved_folder(directory: str | os.PathLike) -> Path:
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


def _saved_architecture(path: Path, record: dict[str, Any]) -> type[RestorationModel]:
    """The model class of a saved folder's architecture."""
    if record["architecture"] not in ARCHITECTURES:
        raise CheckpointError(
            f"{path / CONFIG_NAME} names architecture {record['architecture']!r}; known: "
            f"{list(ARCHITECTURES)}"
        )
    return ARCHITECTURES[record["architecture"]][1]


def _load(
    path: Path, *, device: torch.device | str | None, dtype: torch.dtype | None
) -> RestorationModel:
    """The model saved in the folder ``path``, rebuilt by its architecture's class."""
    model_cls = _saved_architecture(path, read_record(path))
    return model_cls.from_pretrained(path, device=device, dtype=dtype)


def from_pretrained(
    directory: str | os.PathLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RestorationModel:
    """Rebuild a model saved by :func:`save_pretrained`, of any architecture.

    Args:
        directory: The checkpoint directory, or the name of a shipped pretrained model (see
            :func:`list_pretrained`); an existing directory wins over a name.
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
        CheckpointError: if the config is not a treeattn config, of a newer format, of an unknown
            architecture or invalid, if the weights file is truncated or corrupt, if the weights
            do not fit the config (missing, unexpected or shape-mismatched keys, all listed), or
            if either file no longer matches the digest recorded when it was saved.
    """
    return _load(_saved_folder(directory), device=device, dtype=dtype)


def load_model(
    source: str | os.PathLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RestorationModel:
    """Load a trained model from a folder, a recipe run folder or a shipped model's name.

    ``source`` is found by :func:`model_folder` and loaded as :func:`from_pretrained` loads it;
    this is what ``treeattn restore``, ``info`` and ``export`` take.

    Args:
        source: Folder or name.
        device: Where to put the parameters (default: CPU).
        dtype: Parameter dtype (default: float32).

    Returns:
        The model in eval mode.

    Raises:
        TypeError: for a ``source`` that is not a path or name, or a ``device`` that is not a
            device name.
        FileNotFoundError: for a folder that holds no model (e.g. a run still training).
        ValueError: for a file, a name that is neither a folder nor a shipped model (the
            message suggests close names), or a ``device`` not available here.
        CheckpointError: for a model folder that cannot be loaded (the message says why).
    """
    check_device("device", device, allow_meta=False)
    return _load(model_folder(source), device=device, dtype=dtype)


def read_pretrained(directory: str | os.PathLike) -> SavedWeights:
    """Read and verify a model saved by :func:`save_pretrained` without building it.

    The same checks as :func:`from_pretrained` except the fit to a model: the config, the
    weights file, both recorded digests and the training record (the weights to start a
    training run from, ``--init-from``).

    Args:
        directory: The checkpoint directory, or the name of a shipped pretrained model.

    Raises:
        FileNotFoundError: As :func:`from_pretrained`.
        CheckpointError: As :func:`from_pretrained` (the fit to a model is the caller's).
    """
    path = _saved_folder(directory)
    record = read_record(path)
    saved = read_saved(path, record, _saved_architecture(path, record).config_class)
    check_digests(record, saved.weights_sha256, path)
    return saved


def save_pretrained(model: RestorationModel, directory: str | os.PathLike) -> None:
    """Write ``model``'s weights and full config to ``directory`` (created if missing).

    Args:
        model: A treeattn model (built by :func:`create_model` or from a config).
        directory: Target directory; a treeattn checkpoint already there is overwritten.

    Raises:
        TypeError: if ``model`` is not a treeattn model, or ``directory`` not a path.
        FileExistsError: if ``directory`` holds a ``config.json`` that is not a treeattn config,
            or ``directory`` is a file.
    """
    if not isinstance(model, RestorationModel):
        raise TypeError(f"save_pretrained needs a treeattn model, got {type(model).__name__}")
    model.save_pretrained(directory)


def create_model(
    name: str,
    *,
    pretrained: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> RestorationModel:
    """Build a registered model, or load a shipped pretrained one.

    Args:
        name: A registered name (see :func:`list_models`), or with ``pretrained=True`` the name
            of a shipped model (see :func:`list_pretrained`).
        pretrained: Load the shipped weights of ``name`` (the model is returned in eval mode).
        device: Parameter device.
        dtype: Parameter dtype.
        **overrides: Config fields to change, e.g. ``in_chans=1, out_chans=1`` or ``dim=32``
            (not with ``pretrained=True``: the weights fix the architecture).

    Raises:
        TypeError: For a name that is not a string, ``pretrained`` that is not a bool (``"no"``
            would read as true and load weights), or an override of the wrong type (the message
            names the field).
        ValueError: For an unknown name, ``pretrained=True`` with overrides or with a registered
            name that has no shipped weights, an override that is not a config field (the
            message lists the valid ones), or an invalid value (an unavailable ``device`` among
            them).
    """
    check_str("name", name)
    check_bool("pretrained", pretrained)
    if pretrained:
        if overrides:
            raise ValueError(
                f"create_model({name!r}, pretrained=True) loads fixed weights; drop the "
                f"overrides {sorted(overrides)} or use pretrained=False"
            )
        if name not in list_pretrained() and name in _REGISTRY:
            raise ValueError(
                f"{name!r} is a registered architecture with no shipped weights (shipped: "
                f"{list_pretrained()}); build it untrained with create_model({name!r}), or load "
                "trained weights with treeattn.from_pretrained(FOLDER)"
            )
        return _load(pretrained_path(name), device=device, dtype=dtype)
    if name in list_pretrained() and name not in _REGISTRY:
        raise ValueError(
            f"{name!r} is a shipped pretrained model; load it with "
            f"create_model({name!r}, pretrained=True)"
        )
    config = model_config(name)
    valid = [f.name for f in dataclasses.fields(config)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"{name!r} has no setting(s) {unknown}; valid {type(config).__name__} keys: {valid}"
        )
    return build_model(
        dataclasses.replace(config, **overrides), name=name, device=device, dtype=dtype
    )
