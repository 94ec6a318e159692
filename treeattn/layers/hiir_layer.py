"""``HiIRLayer``: one Hi-IR layer — tree attention plus the L3 FFN, each in a residual branch."""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import nn

from treeattn.layers.attention import (
    LevelAttention,
    LevelStackAttention,
    TreeAttention,
    check_pass_values_tree,
)
from treeattn.layers.ffn import build_ffn
from treeattn.layers.init import INIT_SCHEMES, check_init_norm, init_weights
from treeattn.layers.residual import NORM_WIRINGS
from treeattn.ops.partition import PatchSizes, TreeSizes, normalize_patch_sizes
from treeattn.validate import as_compute_dtype, check_choice, check_int

__all__ = ["ATTENTION_VARIANTS", "DATA_FORMATS", "HiIRLayer", "check_variant_tree"]


def _v1(dim, num_heads, sizes, level, **common) -> nn.Module:
    return LevelAttention(dim, num_heads, sizes, level=level, **common)


def _v2(dim, num_heads, sizes, level, **common) -> nn.Module:
    return LevelStackAttention(dim, num_heads, sizes, **common)


def _v3(dim, num_heads, sizes, level, **common) -> nn.Module:
    return TreeAttention(dim, num_heads, sizes, **common)


def _v4(dim, num_heads, sizes, level, **common) -> nn.Module:
    return TreeAttention(dim, num_heads, sizes, pass_values=True, **common)


# Layer variant (how one layer's attention walks the tree) → builder of its attention module.
ATTENTION_VARIANTS: dict[str, Callable[..., nn.Module]] = {
    "v1": _v1,
    "v2": _v2,
    "v3": _v3,
    "v4": _v4,
}


def check_variant_tree(variant: str, sizes: TreeSizes) -> None:
    """Refuse a tree the variant cannot attend over: ``v4`` builds
    ``TreeAttention(pass_values=True)``, whose rule (:func:`check_pass_values_tree`) this applies
    before any module exists (for a model config).

    Raises:
        ValueError: for ``v4`` with fewer than 3 levels.
    """
    if variant == "v4":
        check_pass_values_tree(sizes)


# Variants that attend at one chosen tree level (the others attend at every level).
_LEVEL_VARIANTS = ("v1",)
DATA_FORMATS = ("BCHW", "BHWC")


class _ToChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b c h w -> b h w c")


class _ToChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b h w c -> b c h w")


class HiIRLayer(nn.Module):
    """One Hi-IR layer: ``Y = X + Attn(LN(X))``, ``Z = Y + FFN(LN(Y))`` (pre-norm default).

    Works on any ``H, W ≥ 1``: attention pads internally (reflect, replicate when too small) and the
    output has the input's size.

    Args:
        dim: Channels ``C``.
        num_heads: Attention heads (``C`` and, for v3/v4, ``C/2`` must be divisible by it).
        patch_sizes: Cumulative block size per tree level, e.g. ``(16, 64)`` (16×16 patches inside
            64×64 regions); square ints or ``(h, w)`` pairs. Depth is its length.
        variant: ``v3`` (tree attention, default), ``v4`` (v3 with value pass-through from the third
            level; needs ≥ 3 levels), ``v2`` (full attention per level with a LayerNorm between),
            ``v1`` (full attention at one level, ``level``; stack layers with alternating levels).
        level: Tree level a ``v1`` layer attends at (0-based); must stay 0 for other variants.
        attn_type: ``dot`` or ``cosine``.
        pos_bias: ``cpb`` (continuous MLP), ``table`` or ``none``.
        ffn_type: ``gated_dwconv`` (L3, default), ``leff`` or ``mlp`` (without L3).
        ffn_ratio: FFN hidden ratio.
        norm: ``pre`` or ``post`` (res-post-norm).
        shift: Offset the attention grid by half the top block (ablation).
        drop_path: Stochastic-depth probability of both branches.
        init: Init scheme (see :mod:`treeattn.layers.init`), or ``None`` to leave the weights to
            the caller (models apply their scheme once to all their modules).
        backend: Attention backend: ``auto``, ``sdpa``, ``fused``, ``math`` or ``xformers``.
        data_format: ``BCHW`` (default) or ``BHWC`` (for stacking layers without permutes).
        device: Parameter device.
        dtype: Parameter dtype.

    Floating-point input of another dtype is computed in the parameter dtype and returned in its
    own dtype; integer input raises ``TypeError`` (see :func:`treeattn.validate.as_compute_dtype`).

    Example:
        >>> layer = HiIRLayer(32, 2, patch_sizes=(4, 16))
        >>> layer(torch.randn(1, 32, 23, 17)).shape
        torch.Size([1, 32, 23, 17])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        patch_sizes: PatchSizes = (16, 64),
        *,
        variant: str = "v3",
        level: int = 0,
        attn_type: str = "dot",
        pos_bias: str = "cpb",
        ffn_type: str = "gated_dwconv",
        ffn_ratio: float = 2.0,
        norm: str = "pre",
        shift: bool = False,
        drop_path: float = 0.0,
        init: str | None = "default",
        backend: str = "auto",
        data_format: str = "BCHW",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_choice("variant", variant, ATTENTION_VARIANTS)
        check_choice("norm", norm, NORM_WIRINGS)
        check_choice("data_format", data_format, DATA_FORMATS)
        if check_int("level", level, minimum=0) and variant not in _LEVEL_VARIANTS:
            raise ValueError(
                f"{level=} is only read by variant(s) {list(_LEVEL_VARIANTS)}; {variant=} attends "
                "at every tree level, so leave level=0"
            )
        if init is not None:
            check_choice("init", init, INIT_SCHEMES)
            check_init_norm(init, norm)
        sizes = normalize_patch_sizes(patch_sizes)
        factory = {"device": device, "dtype": dtype}
        attn = ATTENTION_VARIANTS[variant](
            dim,
            num_heads,
            sizes,
            level,
            attn_type=attn_type,
            pos_bias=pos_bias,
            shift=shift,
            backend=backend,
            **factory,
        )
        ffn = build_ffn(ffn_type, dim, ffn_ratio, **factory)
        wiring = NORM_WIRINGS[norm]
        self.attn = wiring(dim, attn, drop_path=drop_path, **factory)
        self.ffn = wiring(dim, ffn, drop_path=drop_path, **factory)
        channels_first = data_format == "BCHW"
        self.to_bhwc = _ToChannelsLast() if channels_first else nn.Identity()
        self.from_bhwc = _ToChannelsFirst() if channels_first else nn.Identity()
        self.dim = dim
        self.patch_sizes = sizes
        self.variant = variant
        self.data_format = data_format
        self._channel_axis = 1 if channels_first else 3
        if init is not None:
            init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` (or ``(B, H, W, C)`` with ``data_format="BHWC"``) → same shape."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"HiIRLayer takes a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[self._channel_axis] != self.dim:
            raise ValueError(
                f"HiIRLayer(dim={self.dim}, data_format={self.data_format!r}) got input of shape "
                f"{tuple(x.shape)}; expected {self.data_format} with {self.dim} channels "
                "(set data_format to match your layout)"
            )
        if min(x.shape) == 0:
            raise ValueError(f"HiIRLayer got an empty input of shape {tuple(x.shape)}")
        x, dtype = as_compute_dtype(x, self.attn.norm.weight.dtype, who="HiIRLayer")
        return self.from_bhwc(self.ffn(self.attn(self.to_bhwc(x)))).to(dtype)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, patch_sizes={self.patch_sizes}, {self.data_format}"
