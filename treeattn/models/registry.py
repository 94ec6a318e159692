"""The model registry: named configs, and building models from them.

A registered model is a name bound to a frozen config (:mod:`treeattn.models.configs`); the config's
class picks the architecture. The named variants live in :mod:`treeattn.models.variants`.

Example:
    >>> from treeattn.models import create_model, list_models
    >>> list_models("hiir_b_sr_x?")
    ['hiir_b_sr_x2', 'hiir_b_sr_x3', 'hiir_b_sr_x4']
    >>> model = create_model("hiir_sr_tiny_x2", dim=16, depths=(1,))
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any

import torch

from treeattn.models.base import RestorationModel
from treeattn.models.columnar import HiIRColumnar
from treeattn.models.configs import ColumnarConfig, LayerConfig, UNetConfig
from treeattn.models.unet import HiIRUNet

__all__ = [
    "ARCHITECTURES",
    "architecture_name",
    "build_model",
    "create_model",
    "list_models",
    "model_config",
    "register_model",
]

# Architecture name (stored in checkpoints) → (config class, model class).
ARCHITECTURES: dict[str, tuple[type[LayerConfig], type[RestorationModel]]] = {
    "columnar": (ColumnarConfig, HiIRColumnar),
    "unet": (UNetConfig, HiIRUNet),
}

_REGISTRY: dict[str, LayerConfig] = {}


def architecture_name(config: LayerConfig) -> str:
    """The architecture name of a config (``columnar`` or ``unet``)."""
    for name, (config_cls, _) in ARCHITECTURES.items():
        if type(config) is config_cls:
            return name
    raise TypeError(
        f"{type(config).__name__} is not a model config; use one of "
        f"{[c.__name__ for c, _ in ARCHITECTURES.values()]}"
    )


def register_model(name: str, config: LayerConfig) -> None:
    """Register a named variant.

    Args:
        name: New, unique model name.
        config: Its frozen config (:class:`ColumnarConfig` or :class:`UNetConfig`).

    Raises:
        ValueError: if ``name`` is already registered.
        TypeError: if ``config`` is not a model config.
    """
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
        ValueError: if no model of that name exists (the message suggests close names).
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=5)
        hint = f"; did you mean {close}?" if close else "; see treeattn.models.list_models()"
        raise ValueError(f"no model named {name!r}{hint}")
    return _REGISTRY[name]


def build_model(
    config: LayerConfig,
    *,
    name: str = "custom",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RestorationModel:
    """Build the model a config describes (its class picks the architecture)."""
    _, model_cls = ARCHITECTURES[architecture_name(config)]
    return model_cls(config, name=name, device=device, dtype=dtype)


def create_model(
    name: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> RestorationModel:
    """Build a registered model, optionally changing some of its settings.

    Args:
        name: Registered name (see :func:`list_models`).
        device: Parameter device.
        dtype: Parameter dtype.
        **overrides: Config fields to change, e.g. ``in_chans=1, out_chans=1`` or ``dim=32``.

    Raises:
        ValueError: for an unknown name, an override that is not a config field (the message
            lists the valid ones), or an invalid value.
    """
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
