"""treeattn: Hi-IR hierarchical tree-attention layers, models and recipes for PyTorch."""

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

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "GatedDWConvFFN",
    "HiIRLayer",
    "LeFF",
    "LevelAttention",
    "LevelStackAttention",
    "TreeAttention",
    "__version__",
    "build_ffn",
    "build_stage_end",
    "init_weights",
]
