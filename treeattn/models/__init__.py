"""Hi-IR models: columnar (SR) and U-shape networks, their configs, registry, metadata and I/O.

Every way to get a model goes through :mod:`treeattn.models.registry`: ``create_model`` (a
registered name, or a shipped one with ``pretrained=True``) and ``load_model`` (a saved folder, a
recipe run folder or a shipped name).

Example:
    >>> from treeattn.models import create_model, list_models
    >>> model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1)
    >>> model.meta.task, model.meta.multiple_of
    ('restore', 8)
"""

from treeattn.models.banded import banded_forward
from treeattn.models.base import RestorationModel
from treeattn.models.checkpoint import CheckpointError
from treeattn.models.columnar import HiIRColumnar
from treeattn.models.configs import ColumnarConfig, LayerConfig, UNetConfig
from treeattn.models.meta import ModelMeta
from treeattn.models.provenance import InitRecord, TrainingRecord
from treeattn.models.registry import (
    build_model,
    create_model,
    from_pretrained,
    list_models,
    list_pretrained,
    load_model,
    model_config,
    pretrained_info,
    register_model,
    save_pretrained,
)
from treeattn.models.unet import HiIRUNet

__all__ = [
    "CheckpointError",
    "ColumnarConfig",
    "HiIRColumnar",
    "HiIRUNet",
    "InitRecord",
    "LayerConfig",
    "ModelMeta",
    "RestorationModel",
    "TrainingRecord",
    "UNetConfig",
    "banded_forward",
    "build_model",
    "create_model",
    "from_pretrained",
    "list_models",
    "list_pretrained",
    "load_model",
    "model_config",
    "pretrained_info",
    "register_model",
    "save_pretrained",
]
