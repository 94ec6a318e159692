"""Pure tensor functions: tree partitions, padding, position tables, attention and gate kernels."""

from treeattn.ops.attention import BACKENDS, attention_math, attention_sdpa, resolve_backend
from treeattn.ops.gate import dwconv_gated_gelu, gated_gelu
from treeattn.ops.padding import crop_to, pad_to_multiple
from treeattn.ops.partition import (
    LevelGeometry,
    TreeSizes,
    level_geometry,
    normalize_patch_sizes,
    tree_partition,
    tree_regroup,
    tree_reverse,
)
from treeattn.ops.position import relative_coords_table, relative_position_index

__all__ = [
    "BACKENDS",
    "LevelGeometry",
    "TreeSizes",
    "attention_math",
    "attention_sdpa",
    "crop_to",
    "dwconv_gated_gelu",
    "gated_gelu",
    "level_geometry",
    "normalize_patch_sizes",
    "pad_to_multiple",
    "relative_coords_table",
    "relative_position_index",
    "resolve_backend",
    "tree_partition",
    "tree_regroup",
    "tree_reverse",
]
