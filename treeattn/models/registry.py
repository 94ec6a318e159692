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
import fnmatch
from typing import TYPE_CHECKING, Any

import torch

# The model modules enter their architectures into the table when imported.
from treeattn.models import columnar as _columnar  # noqa: F401
from treeattn.models import unet as _unet  # noqa: F401
from treeattn.models.architectures import (
    ARCHITECTURES,
    architecture_name,
    build_model,
)
from treeattn.models.configs import LayerConfig
from treeattn.models.names import did_you_mean
from treeattn.models.pretrained import list_pretrained
from treeattn.validate import check_str

if TYPE_CHECKING:
    from treeattn.models.base import RestorationModel

__all__ = [
    "ARCHITECTURES",
    "architecture_name",
    "build_model",
    "create_model",
    "list_models",
    "model_config",
    "register_model",
]

_REGISTRY: dict[str, LayerConfig] = {}


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
        TypeError: for a name that is not a string, or an override of the wrong type (the
            message names the field).
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
