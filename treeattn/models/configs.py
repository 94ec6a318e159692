"""Frozen configuration dataclasses of the two Hi-IR model shapes.

A config holds every hyper-parameter of a model, so that a model can be rebuilt exactly from it
(:mod:`treeattn.models.checkpoint` stores it as JSON). Variants are instances of these classes in
the registry's table (:mod:`treeattn.models.variants`), never copies of model code.

* :class:`LayerConfig` — the per-layer settings shared by both shapes (layer type, tree, variant,
  attention type, position bias, FFN, norm placement, shift, stage-end block, init, drop-path).
* :class:`ColumnarConfig` — the Hi-IR paper's columnar (super-resolution) shape
  (`docs/models.md`).
* :class:`UNetConfig` — the U-shape (denoising, JPEG, deblurring, demosaicking, weather).

Every setting is checked once, when the config is created: a value of the wrong type (``dim="16"``,
``depths=2``, ``shift="no"``) raises ``TypeError`` naming the field (the check follows the
field's type), a bad value ``ValueError`` naming the field and the fix. Names are checked against
the layers' name→class tables (``attn_type`` against
:data:`~treeattn.layers.attention.SIMILARITIES`, ``layer_type`` against
:data:`~treeattn.layers.layer_types.LAYER_TYPES`, ...) and the rules the layers set (heads that
divide the width, ``v4``'s 3-level tree, ``zero_ln``'s post-norm, the ranges of ``drop_path``,
``ffn_ratio``, ``init_std`` and ``window_size``) with the layers' own check functions: each rule
is written once, beside the layer that needs it, so a config and the modules it builds cannot
disagree. Lists are accepted where tuples are expected and stored as tuples.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from treeattn.layers.attention import SIMILARITIES, check_heads
from treeattn.layers.drop import check_drop_path
from treeattn.layers.ffn import FFNS, check_ffn_ratio
from treeattn.layers.hiir_layer import ATTENTION_VARIANTS, check_variant_tree
from treeattn.layers.init import INIT_SCHEMES, check_init_norm, check_init_std
from treeattn.layers.layer_types import LAYER_TYPES
from treeattn.layers.pos_bias import POS_BIAS
from treeattn.layers.residual import NORM_WIRINGS
from treeattn.layers.stage_end import STAGE_ENDS
from treeattn.layers.swin import check_window_size
from treeattn.models.global_residual import RESIDUAL_MODULES
from treeattn.models.meta import TASKS
from treeattn.ops.attention import BACKENDS
from treeattn.ops.partition import TreeSizes, normalize_patch_sizes
from treeattn.validate import check_bool, check_choice, check_float, check_int

__all__ = [
    "CHOICES",
    "SWIN_ONLY_FIELDS",
    "TREE_ONLY_FIELDS",
    "ColumnarConfig",
    "LayerConfig",
    "UNetConfig",
    "config_from_dict",
    "config_to_dict",
]

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)

# Settings that only one layer type reads; the other type requires them at their defaults so
# that nothing is silently ignored.
TREE_ONLY_FIELDS = (
    "patch_sizes",
    "variant",
    "attn_type",
    "pos_bias",
    "ffn_type",
    "norm",
    "shift",
)
SWIN_ONLY_FIELDS = ("window_size",)


# Fields naming an implementation → the table of names they are checked against (the tables the
# layers and models build from, so a config can only name what exists).
CHOICES: dict[str, Any] = {
    "layer_type": LAYER_TYPES,
    "variant": ATTENTION_VARIANTS,
    "attn_type": SIMILARITIES,
    "pos_bias": POS_BIAS,
    "ffn_type": FFNS,
    "norm": NORM_WIRINGS,
    "stage_end": STAGE_ENDS,
    "init": INIT_SCHEMES,
    "backend": BACKENDS,
    "residual": RESIDUAL_MODULES,
    "task": TASKS,
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _as_tuples(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value


def _int_tuple(name: str, value: Any) -> tuple:
    if not isinstance(value, tuple):
        raise TypeError(
            f"{name}={value!r} must be a tuple (or list) of ints, got {type(value).__name__}; "
            f"e.g. {name}=(2, 2)"
        )
    return tuple(check_int(f"{name}[{i}]", v) for i, v in enumerate(value))


def _float_tuple_or_none(name: str, value: Any) -> tuple | None:
    if value is None:
        return None
    if not isinstance(value, tuple):
        raise TypeError(
            f"{name}={value!r} must be a tuple (or list) of numbers or None, "
            f"got {type(value).__name__}"
        )
    return tuple(check_float(f"{name}[{i}]", v) for i, v in enumerate(value))


def _tree_value(name: str, value: Any) -> Any:
    return value  # the tree's form is checked by normalize_patch_sizes


# Type of a field → its check (returning the value to store).
_TYPE_CHECKS: dict[Any, Callable[[str, Any], Any]] = {
    int: check_int,
    float: check_float,
    bool: check_bool,
    str: lambda name, value: check_choice(name, value, CHOICES[name]),
    tuple[int, ...]: _int_tuple,
    tuple[float, ...] | None: _float_tuple_or_none,
    tuple: _tree_value,
}


@functools.cache
def _field_checks(cls: type) -> dict[str, Callable[[str, Any], Any]]:
    """Field name → the check of its type, for a config class."""
    types = typing.get_type_hints(cls)
    return {field.name: _TYPE_CHECKS[types[field.name]] for field in dataclasses.fields(cls)}


def _check_types(config: LayerConfig) -> None:
    """Type-check every field (lists become tuples); strings must name one of :data:`CHOICES`."""
    for name, check in _field_checks(type(config)).items():
        object.__setattr__(config, name, check(name, _as_tuples(getattr(config, name))))


@dataclass(frozen=True)
class LayerConfig:
    """Per-layer settings shared by both model shapes.

    Attributes:
        layer_type: ``hiir`` (tree attention layers) or ``swin`` (shifted-window baseline). The
            "isolated" baseline is ``hiir`` with a one-level tree, e.g. ``patch_sizes=(16,)``.
        variant: Hi-IR layer variant ``v1`` | ``v2`` | ``v3`` | ``v4``. ``v1`` layers alternate
            tree levels (layer ``i`` attends at level ``i % depth``); ``v4`` needs a 3-level tree.
        attn_type: ``dot`` or ``cosine``.
        pos_bias: ``cpb`` (continuous MLP), ``table`` or ``none``.
        ffn_type: ``gated_dwconv`` (L3, default), ``leff`` or ``mlp`` ("without L3").
        ffn_ratio: FFN hidden ratio ``r``.
        norm: ``pre`` or ``post`` (res-post-norm).
        shift: Shift the window grid of every second tree layer of a stage by half its top block
            (``swin`` layers always alternate their shift).
        window_size: Window of the ``swin`` baseline (alternate layers shifted by half of it).
        stage_end: Block closing each stage: ``conv1`` | ``linear`` | ``conv3``.
        init: Init scheme (:func:`treeattn.layers.init.init_weights`).
        init_std: Standard deviation of the truncated-normal Linear weights.
        drop_path: Largest stochastic-depth rate (linear schedule over all layers, from 0).
        backend: Attention backend (``auto`` | ``sdpa`` | ``math`` | ``xformers``).
    """

    layer_type: str = "hiir"
    variant: str = "v3"
    attn_type: str = "dot"
    pos_bias: str = "cpb"
    ffn_type: str = "gated_dwconv"
    ffn_ratio: float = 2.0
    norm: str = "pre"
    shift: bool = False
    window_size: int = 8
    stage_end: str = "conv3"
    init: str = "default"
    init_std: float = 0.02
    drop_path: float = 0.0
    backend: str = "auto"

    def _check_layers(self, trees: tuple) -> None:
        # The layers' own rules, applied before any layer exists (see the module docstring).
        check_ffn_ratio(self.ffn_ratio)
        check_init_std(self.init_std, name="init_std")
        check_drop_path(self.drop_path)
        check_window_size(self.window_size)
        check_init_norm(self.init, self.norm)
        normalized = tuple(normalize_patch_sizes(tree) for tree in trees)
        for sizes in normalized:
            check_variant_tree(self.variant, sizes)
        object.__setattr__(self, "_trees", normalized)
        # Settings read by one layer type only must keep their defaults under the other.
        unused = SWIN_ONLY_FIELDS if self.layer_type == "hiir" else TREE_ONLY_FIELDS
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in unused:
            default = defaults[name]
            _require(
                getattr(self, name) == default,
                f"{name}={getattr(self, name)!r} has no effect with "
                f"layer_type={self.layer_type!r}; leave it at {default!r}",
            )

    def tree(self, level: int = 0) -> TreeSizes:
        """The validated tree of ``level`` (``()`` for ``swin`` layers, which read none)."""
        return self._trees[level] if self.layer_type == "hiir" else TreeSizes()


def _check_channels(cfg: ColumnarConfig | UNetConfig) -> None:
    _check_types(cfg)
    _require(cfg.in_chans >= 1, f"in_chans={cfg.in_chans} must be positive")
    _require(cfg.out_chans >= 1, f"out_chans={cfg.out_chans} must be positive")


@dataclass(frozen=True)
class ColumnarConfig(LayerConfig):
    """Columnar (super-resolution) model: shallow conv, stages, pixel-shuffle upsampler.

    Attributes:
        task: What the model restores (metadata), e.g. ``sr``.
        scale: Upscaling factor: 1, 3 or a power of two.
        in_chans: Input channels.
        out_chans: Output channels.
        dim: Body width ``C``.
        depths: Layers per stage; the number of entries is the number of stages.
        num_heads: Attention heads of every layer.
        patch_sizes: Tree of cumulative block sizes, e.g. ``(16, 64)`` (``p``, ``P``).
        upsampler_dim: Channels of the upsampler (64 in the paper).
        img_mean: Per-channel mean subtracted from the input and added to the output (the
            DIV2K mean by default), or ``None``.
        global_residual: Add the input image to the output (only for ``scale == 1``).
    """

    task: str = "sr"
    scale: int = 2
    in_chans: int = 3
    out_chans: int = 3
    dim: int = 180
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    num_heads: int = 6
    patch_sizes: tuple = (16, 64)
    upsampler_dim: int = 64
    img_mean: tuple[float, ...] | None = DIV2K_MEAN
    global_residual: bool = False

    def __post_init__(self) -> None:
        _check_channels(self)
        self._check_layers((self.patch_sizes,) if self.layer_type == "hiir" else ())
        _require(
            self.scale == 3 or (self.scale >= 1 and self.scale & (self.scale - 1) == 0),
            f"scale={self.scale} is not supported; use 1, 3 or a power of two",
        )
        _require(
            len(self.depths) >= 1 and min(self.depths) >= 1,
            f"depths={self.depths} needs at least one stage, each with at least one layer",
        )
        check_heads(self.dim, self.num_heads)
        _require(self.upsampler_dim >= 1, f"upsampler_dim={self.upsampler_dim} must be positive")
        if self.img_mean is not None:
            _require(
                len(self.img_mean) == self.in_chans == self.out_chans,
                f"img_mean has {len(self.img_mean)} values but in_chans={self.in_chans}, "
                f"out_chans={self.out_chans}; pass one value per channel or img_mean=None",
            )
        if self.global_residual:
            _require(
                self.scale == 1 and self.in_chans == self.out_chans,
                f"global_residual needs scale=1 and in_chans == out_chans, got "
                f"scale={self.scale}, in_chans={self.in_chans}, out_chans={self.out_chans}",
            )


@dataclass(frozen=True)
class UNetConfig(LayerConfig):
    """U-shaped (Restormer-like) model: encoder levels, latent, decoder levels.

    Attributes:
        task: What the model restores (metadata), e.g. ``denoise``.
        in_chans: Input channels (6 for dual-pixel defocus: left and right views).
        out_chans: Output channels.
        dims: Channels per level, shallowest first, the last one is the latent.
        depths: Layers of each encoder level and of the latent (same length as ``dims``).
        decoder_depths: Layers of each decoder level, shallowest first (one fewer than ``dims``).
        num_heads: Heads per level (the decoder reuses its level's count).
        patch_sizes: One tree per level, e.g. ``((16, 64), (16, 64), (16, 32), (16, 32))``.
        reduce_level1: Reduce the level-1 skip concatenation back to ``dims[0]`` with a 1×1 conv;
            ``False`` (the paper) keeps ``2·dims[0]`` channels in the last decoder level.
        residual: Global residual added to the output: ``input`` (needs ``in_chans ==
            out_chans``), ``view_mean`` (mean of the ``in_chans / out_chans`` stacked views,
            dual-pixel) or ``none``.
    """

    task: str = "denoise"
    in_chans: int = 3
    out_chans: int = 3
    dims: tuple[int, ...] = (48, 96, 192, 384)
    depths: tuple[int, ...] = (6, 6, 6, 6)
    decoder_depths: tuple[int, ...] = (6, 6, 6)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    patch_sizes: tuple = ((16, 64), (16, 64), (16, 32), (16, 32))
    reduce_level1: bool = False
    residual: str = "input"

    def __post_init__(self) -> None:
        _check_channels(self)
        levels = len(self.dims)
        _require(levels >= 2, f"{self.dims=} needs at least one encoder level and a latent")
        per_level = ("depths", "num_heads", "patch_sizes")  # swin layers read no trees
        for name in per_level if self.layer_type == "hiir" else per_level[:2]:
            _require(
                len(getattr(self, name)) == levels,
                f"{name} has {len(getattr(self, name))} entries but dims has {levels}; "
                "give one per level (encoder levels, then the latent)",
            )
        _require(
            len(self.decoder_depths) == levels - 1,
            f"decoder_depths needs {levels - 1} entries (one per decoder level), "
            f"got {self.decoder_depths}",
        )
        _require(min(self.depths + self.decoder_depths) >= 1, "every level needs >= 1 layer")
        for level, (dim, heads) in enumerate(zip(self.dims, self.num_heads, strict=True)):
            check_heads(dim, heads, name=f"dims[{level}]")
        for shallow, deep in zip(self.dims, self.dims[1:], strict=False):
            _require(
                deep == 2 * shallow and shallow % 2 == 0,
                f"dims {self.dims} must double per level (pixel-(un)shuffle by 2 with a conv to "
                "half / double the channels)",
            )
        self._check_layers(self.patch_sizes if self.layer_type == "hiir" else ())
        if self.residual == "input":
            _require(
                self.in_chans == self.out_chans,
                f"residual='input' needs in_chans == out_chans, got {self.in_chans} and "
                f"{self.out_chans}; use residual='view_mean' (stacked views) or 'none'",
            )
        if self.residual == "view_mean":
            _require(
                self.in_chans % self.out_chans == 0,
                f"residual='view_mean' needs in_chans={self.in_chans} to be a multiple of "
                f"out_chans={self.out_chans} (views stacked along channels)",
            )


def config_to_dict(config: LayerConfig) -> dict[str, Any]:
    """Every field of a config, as plain JSON-ready values."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type[LayerConfig], values: dict[str, Any]) -> LayerConfig:
    """Rebuild a config from :func:`config_to_dict` output (lists become tuples).

    Raises:
        ValueError: if a key is not a field of ``cls``, or a value is invalid.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings {unknown}; valid: {sorted(names)}")
    return cls(**{key: _as_tuples(value) for key, value in values.items()})
