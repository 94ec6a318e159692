"""``create_model``: a registered architecture, freshly initialised, or a shipped trained model."""

from __future__ import annotations

from typing import Any

import torch

from treeattn.models import registry
from treeattn.models.base import RestorationModel
from treeattn.models.hub import from_pretrained
from treeattn.models.pretrained import list_pretrained, pretrained_path
from treeattn.validate import check_bool, check_str

__all__ = ["create_model"]


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
        name: A registered name (see :func:`~treeattn.models.list_models`), or with
            ``pretrained=True`` the name of a shipped model (see
            :func:`~treeattn.models.list_pretrained`).
        pretrained: Load the shipped weights of ``name`` (the model is returned in eval mode).
        device: Parameter device.
        dtype: Parameter dtype.
        **overrides: Config fields to change, e.g. ``in_chans=1, out_chans=1`` or ``dim=32``
            (not with ``pretrained=True``: the weights fix the architecture).

    Raises:
        TypeError: For a name that is not a string, or ``pretrained`` that is not a bool
            (``"no"`` would read as true and load weights).
        ValueError: For an unknown name, ``pretrained=True`` with overrides or with a registered
            name that has no shipped weights, an override that is not a config field, or an
            invalid value (an unavailable ``device`` among them).
    """
    check_str("name", name)
    check_bool("pretrained", pretrained)
    if pretrained:
        if overrides:
            raise ValueError(
                f"create_model({name!r}, pretrained=True) loads fixed weights; drop the "
                f"overrides {sorted(overrides)} or use pretrained=False"
            )
        if name not in list_pretrained() and name in registry.list_models():
            raise ValueError(
                f"{name!r} is a registered architecture with no shipped weights (shipped: "
                f"{list_pretrained()}); build it untrained with create_model({name!r}), or load "
                "trained weights with treeattn.from_pretrained(FOLDER)"
            )
        return from_pretrained(pretrained_path(name), device=device, dtype=dtype)
    if name in list_pretrained() and name not in registry.list_models():
        raise ValueError(
            f"{name!r} is a shipped pretrained model; load it with "
            f"create_model({name!r}, pretrained=True)"
        )
    return registry.create_model(name, device=device, dtype=dtype, **overrides)
