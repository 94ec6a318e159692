"""Hi-IR layers: tree attention, FFNs, stage-end blocks, init schemes and the full layer."""

from treeattn.layers.attention import (
    LevelAttend,
    LevelAttention,
    LevelStackAttention,
    TreeAttention,
)
from treeattn.layers.drop import DropPath, drop_path_rates
from treeattn.layers.ffn import FFNS, MLP, GatedDWConvFFN, LeFF, build_ffn
from treeattn.layers.hiir_layer import ATTENTION_VARIANTS, HiIRLayer
from treeattn.layers.init import INIT_SCHEMES, init_weights
from treeattn.layers.layer_types import LAYER_TYPES
from treeattn.layers.pos_bias import (
    POS_BIAS,
    ContinuousPositionBias,
    NoPositionBias,
    TablePositionBias,
)
from treeattn.layers.stage_end import STAGE_ENDS, build_stage_end
from treeattn.layers.swin import SwinLayer

__all__ = [
    "ATTENTION_VARIANTS",
    "FFNS",
    "INIT_SCHEMES",
    "LAYER_TYPES",
    "MLP",
    "POS_BIAS",
    "STAGE_ENDS",
    "ContinuousPositionBias",
    "DropPath",
    "GatedDWConvFFN",
    "HiIRLayer",
    "LeFF",
    "LevelAttend",
    "LevelAttention",
    "LevelStackAttention",
    "NoPositionBias",
    "SwinLayer",
    "TablePositionBias",
    "TreeAttention",
    "build_ffn",
    "build_stage_end",
    "drop_path_rates",
    "init_weights",
]
