"""The layer types a model stage stacks: name (``LayerConfig.layer_type``) → layer class."""

from __future__ import annotations

from torch import nn

from treeattn.layers.hiir_layer import HiIRLayer
from treeattn.layers.swin import SwinLayer

__all__ = ["LAYER_TYPES"]

#: ``hiir`` (tree attention layers) or ``swin`` (the shifted-window baseline).
LAYER_TYPES: dict[str, type[nn.Module]] = {"hiir": HiIRLayer, "swin": SwinLayer}
