"""The table of named model variants: name → config (the registry starts from it).

* Paper models: ``hiir_b_sr_x{2,3,4}`` (C=180, 6×6 layers, h=6, p=16, P=64),
  ``hiir_l_sr_x{2,3,4}`` (C=224, 8×8 layers, h=8), and the U-shape ``hiir_unet_*`` per task.
* CPU sizes: ``hiir_sr_tiny_x*``, ``hiir_sr_small_x*``, ``hiir_unet_tiny``, ``hiir_unet_small``,
  and the gray denoisers ``hiir_unet_tiny_dn_gray`` / ``hiir_unet_mid_dn_gray``.
* Ablations of ``hiir_b_sr_x2`` and ``hiir_sr_tiny_x2``, named ``<base>_<suffix>`` (see
  :data:`ABLATIONS`). ``v4`` and ``tree3`` use a 3-level tree that adds a level of twice the
  region size on top of the base tree (``(16, 64, 128)`` for B): the L1/L2 windows stay those of
  the base, and only the third level differs. The paper's Table 7 ablates Hi-IR-B with ``conv1``
  stage ends (v3 + conv1 is Table 4's 15.69M base), so the :data:`TABLE7` suffixes of
  ``hiir_b_sr_x2`` also set ``stage_end="conv1"`` and reproduce the table's counts.
* The scaling study of Tables 4/18: ``hiir_12x12_sr_x{2,3,4}_{conv1,linear,conv3}`` (Hi-IR-B
  grown to 12 stages × 12 layers, with each stage-end block).
* Information-flow baselines at the same width: ``swin_*`` (shifted 8×8 windows, alternating
  shift) and ``isolated_*`` (L1 patches only, no shift), for the SR bases above and for
  ``hiir_unet_tiny`` / ``hiir_unet_dn_color``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from treeattn.layers.stage_end import STAGE_ENDS
from treeattn.models.configs import ColumnarConfig, LayerConfig, UNetConfig

__all__ = ["ABLATIONS", "NAMED_CONFIGS", "TABLE7"]

_TINY_TREE = (8, 32)


_L = {"dim": 224, "depths": (8,) * 8, "num_heads": 8}
_SR_TINY = {
    "dim": 32,
    "depths": (2, 2),
    "num_heads": 2,
    "patch_sizes": _TINY_TREE,
    "upsampler_dim": 32,
}
_SR_SMALL = {"dim": 64, "depths": (4, 4, 4, 4), "num_heads": 4, "patch_sizes": _TINY_TREE}

_UNET_TINY = {
    "task": "restore",
    "dims": (16, 32, 64, 128),
    "depths": (1, 1, 1, 1),
    "decoder_depths": (1, 1, 1),
    "num_heads": (1, 2, 4, 8),
    "patch_sizes": ((8, 32), (8, 32), (8, 16), (8, 16)),
}
_UNET_MID = {
    **_UNET_TINY,
    "dims": (24, 48, 96, 192),
    "patch_sizes": ((8, 64), (8, 64), (8, 32), (8, 32)),
}
_UNET_SMALL = {
    **_UNET_TINY,
    "dims": (32, 64, 128, 256),
    "depths": (2, 2, 2, 2),
    "decoder_depths": (2, 2, 2),
}

# Registered name → config (the registry's content; layer variants v1-v4 are
# treeattn.layers.ATTENTION_VARIANTS, a different thing).
NAMED_CONFIGS: dict[str, LayerConfig] = {
    **{f"hiir_b_sr_x{s}": ColumnarConfig(scale=s) for s in (2, 3, 4)},
    **{f"hiir_l_sr_x{s}": ColumnarConfig(scale=s, **_L) for s in (2, 3, 4)},
    **{f"hiir_sr_tiny_x{s}": ColumnarConfig(scale=s, **_SR_TINY) for s in (2, 3, 4)},
    **{f"hiir_sr_small_x{s}": ColumnarConfig(scale=s, **_SR_SMALL) for s in (2, 3, 4)},
    **{
        f"hiir_12x12_sr_x{s}_{end}": ColumnarConfig(scale=s, depths=(12,) * 12, stage_end=end)
        for s in (2, 3, 4)
        for end in STAGE_ENDS
    },
    "hiir_unet_dn_color": UNetConfig(task="denoise"),
    "hiir_unet_dn_gray": UNetConfig(task="denoise", in_chans=1, out_chans=1),
    "hiir_unet_jpeg_color": UNetConfig(task="jpeg"),
    "hiir_unet_jpeg_gray": UNetConfig(task="jpeg", in_chans=1, out_chans=1),
    "hiir_unet_deblur": UNetConfig(task="deblur"),
    "hiir_unet_defocus": UNetConfig(task="defocus"),
    "hiir_unet_defocus_dp": UNetConfig(task="defocus", in_chans=6, residual="view_mean"),
    "hiir_unet_demosaic": UNetConfig(task="demosaic"),
    "hiir_unet_weather": UNetConfig(task="weather"),
    "hiir_unet_tiny": UNetConfig(**_UNET_TINY),
    "hiir_unet_small": UNetConfig(**_UNET_SMALL),
    # The shipped CPU-trained gray denoiser's architecture (recipes/denoise.py --preset cpu_gray).
    "hiir_unet_tiny_dn_gray": UNetConfig(
        **{**_UNET_TINY, "task": "denoise"}, in_chans=1, out_chans=1
    ),
    # The long-range gray denoiser (recipes/denoise.py --preset cpu_gray_mid): 1.5x the tiny
    # width, and trees whose coarse regions span 128 px (levels 1-2) and 128 / 256 px (levels 3-4)
    # at full resolution.
    "hiir_unet_mid_dn_gray": UNetConfig(
        **{**_UNET_MID, "task": "denoise"}, in_chans=1, out_chans=1
    ),
}


def _three_level(tree: tuple) -> tuple:
    return (*tree, 2 * tree[-1])


def _half(tree: tuple) -> tuple:
    return tuple(size // 2 for size in tree)


# Ablation suffix → function of the base config giving the changed settings.
ABLATIONS: dict[str, Callable[[ColumnarConfig], dict[str, Any]]] = {
    "v1": lambda c: {"variant": "v1"},
    "v2": lambda c: {"variant": "v2"},
    "v1_no_l3": lambda c: {"variant": "v1", "ffn_type": "mlp"},
    "v2_no_l3": lambda c: {"variant": "v2", "ffn_type": "mlp"},
    "v4": lambda c: {"variant": "v4", "patch_sizes": _three_level(c.patch_sizes)},
    "tree3": lambda c: {"patch_sizes": _three_level(c.patch_sizes)},
    "half_tree": lambda c: {"patch_sizes": _half(c.patch_sizes)},
    "no_l3": lambda c: {"ffn_type": "mlp"},
    "leff": lambda c: {"ffn_type": "leff"},
    "conv1": lambda c: {"stage_end": "conv1"},
    "linear": lambda c: {"stage_end": "linear"},
    "cosine": lambda c: {"attn_type": "cosine"},
    "table_bias": lambda c: {"pos_bias": "table"},
    "no_bias": lambda c: {"pos_bias": "none"},
    "shift": lambda c: {"shift": True},
    "post_norm": lambda c: {"norm": "post"},
    "zero_ln": lambda c: {"norm": "post", "init": "zero_ln"},
    "residual_rescale": lambda c: {"init": "residual_rescale"},
    "weight_rescale": lambda c: {"init": "weight_rescale"},
    "trunc_normal": lambda c: {"init": "trunc_normal"},
}

# Suffixes of the paper's Table 7; on the paper base they also take its conv1 stage ends.
TABLE7 = ("v1", "v2", "v4", "no_l3", "v1_no_l3", "v2_no_l3")
_TABLE7_BASES = {"hiir_b_sr_x2": {"stage_end": "conv1"}, "hiir_sr_tiny_x2": {}}


def _default(config: LayerConfig, field: str) -> Any:
    return next(f.default for f in dataclasses.fields(config) if f.name == field)


def _swin(config: LayerConfig) -> LayerConfig:
    tree = _default(config, "patch_sizes")
    return dataclasses.replace(config, layer_type="swin", patch_sizes=tree)


def _isolated(config: LayerConfig) -> LayerConfig:
    if isinstance(config, UNetConfig):
        return dataclasses.replace(config, patch_sizes=tuple(t[:1] for t in config.patch_sizes))
    return dataclasses.replace(config, patch_sizes=config.patch_sizes[:1])


def _derived(table: dict[str, LayerConfig]) -> dict[str, LayerConfig]:
    """The ablations and information-flow baselines of the bases in ``table``."""
    derived = {}
    for base, table7 in _TABLE7_BASES.items():
        for suffix, change in ABLATIONS.items():
            paper = table7 if suffix in TABLE7 else {}
            derived[f"{base}_{suffix}"] = dataclasses.replace(
                table[base], **change(table[base]), **paper
            )
    for base in ("hiir_b_sr_x2", "hiir_sr_tiny_x2", "hiir_unet_tiny", "hiir_unet_dn_color"):
        stem = base.removeprefix("hiir_")
        derived[f"swin_{stem}"] = _swin(table[base])
        derived[f"isolated_{stem}"] = _isolated(table[base])
    return derived


NAMED_CONFIGS.update(_derived(NAMED_CONFIGS))
