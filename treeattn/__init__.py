"""treeattn: Hi-IR hierarchical tree-attention layers, models and recipes for PyTorch.

``import treeattn`` needs only torch, einops, numpy and safetensors; ``treeattn.data`` and
``restore_files`` need the ``[data]`` extra and ``treeattn.engine`` the ``[recipes]`` extra.
"""

from treeattn.inference import restore_files, restore_image
from treeattn.layers import (
    MLP,
    GatedDWConvFFN,
    HiIRLayer,
    LeFF,
    LevelAttention,
    LevelStackAttention,
    TreeAttention,
    build_ffn,
    build_stage_end,
    init_weights,
)
from treeattn.layers.swin import SwinLayer
from treeattn.models import (
    create_model,
    from_pretrained,
    list_models,
    load_model,
    save_pretrained,
)

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "GatedDWConvFFN",
    "HiIRLayer",
    "LeFF",
    "LevelAttention",
    "LevelStackAttention",
    "SwinLayer",
    "TreeAttention",
    "__version__",
    "build_ffn",
    "build_stage_end",
    "create_model",
    "from_pretrained",
    "init_weights",
    "list_models",
    "load_model",
    "restore_files",
    "restore_image",
    "save_pretrained",
]
