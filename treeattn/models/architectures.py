"""The table of model architectures: name (stored in checkpoints) → config class and model class.

Model classes enter it themselves when they are defined (``class HiIRUNet(RestorationModel,
architecture="unet")``), so this module imports no model code, and the registry and the checkpoint
I/O (:mod:`treeattn.models.hub`) find a model class from its config class without importing the
model modules — there is no import cycle to hold together with lazy imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from treeattn.models.configs import LayerConfig
from treeattn.validate import check_device

if TYPE_CHECKING:
    from treeattn.models.base import RestorationModel

__all__ = [
    "ARCHITECTURES",
    "architecture_name",
    "build_model",
    "model_architecture",
    "register_architecture",
]

# Architecture name → (config class, model class); filled by RestorationModel subclasses.
ARCHITECTURES: dict[str, tuple[type[LayerConfig], type[RestorationModel]]] = {}


def register_architecture(
    name: str, config_cls: type[LayerConfig], model_cls: type[RestorationModel]
) -> None:
    """Enter a model class under ``name`` (called by ``RestorationModel.__init_subclass__``).

    Raises:
        ValueError: if ``name`` or ``config_cls`` already belongs to another model class.
    """
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
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str, got {type(name).__name__}")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(
            f"dtype={dtype!r} must be a floating-point torch.dtype such as torch.float32 or "
            "torch.bfloat16 (or None)"
        )
    check_device("device", device)
    return model_cls(config, name=name, device=device, dtype=dtype)
