"""Find the model a user names: a ``save_pretrained`` folder, a recipe run folder or a name."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from treeattn.models.base import RestorationModel
from treeattn.models.hub import CONFIG_NAME, from_pretrained
from treeattn.models.pretrained import pretrained_path

__all__ = ["RUN_MODEL_FOLDER", "load_model", "model_folder"]

#: Where a recipe run folder keeps its final model (written by the final report).
RUN_MODEL_FOLDER = "model"


def model_folder(source: str | os.PathLike) -> Path:
    """The ``save_pretrained`` folder a user names by a folder, a run folder or a shipped name.

    ``source`` is, in this order: a folder holding ``config.json`` (``save_pretrained``), a
    recipe run folder whose ``model/`` holds one (e.g. ``outputs/denoise``), or else the name
    of a shipped pretrained model.

    Raises:
        FileNotFoundError: for a folder that holds no model (e.g. a run still training).
        ValueError: for a file, or a name that is neither a folder nor a shipped model.
    """
    path = Path(source)
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
    try:
        return pretrained_path(str(source))
    except ValueError as error:
        raise ValueError(
            f"model {str(source)!r} not found: it is not a folder holding {CONFIG_NAME} "
            f"(save_pretrained), not a run folder holding {RUN_MODEL_FOLDER}/{CONFIG_NAME} "
            f"(e.g. outputs/denoise), nor a shipped pretrained model "
            f"(`treeattn list --pretrained` shows their names) [{error}]"
        ) from error


def load_model(
    source: str | os.PathLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RestorationModel:
    """Load a model from a folder or by the name of a shipped pretrained model.

    ``source`` is found by :func:`model_folder` (a ``save_pretrained`` folder, a recipe run
    folder or a shipped name) and loaded by :func:`treeattn.models.from_pretrained`.

    Args:
        source: Folder or name.
        device: Where to put the parameters (default: CPU).
        dtype: Parameter dtype (default: float32).

    Returns:
        The model in eval mode.

    Raises:
        FileNotFoundError: for a folder that holds no model (e.g. a run still training).
        ValueError: for a file, or a name that is neither a folder nor a shipped model.
        CheckpointError: for a model folder that cannot be loaded (the message says why).
    """
    return from_pretrained(model_folder(source), device=device, dtype=dtype)
