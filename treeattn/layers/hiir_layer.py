"""``HiIRLayer``: one Hi-IR layer — tree attention plus the L3 FFN, each in a residual branch."""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import nn

from treeattn.layers.attention import LevelAttention, LevelStackAttention, TreeAttention
from treeattn.layers.ffn import build_ffn
from treeattn.layers.init import init_weights
from treeattn.layers.residual import NORM_WIRINGS
from treeattn.ops.partition import PatchSizes, normalize_patch_sizes

__all__ = ["DATA_FORMATS", "VARIANTS", "HiIRLayer"]


def _v1(dim, num_heads, sizes, level, **common) -> nn.Module:
    return LevelAttention(dim, num_heads, sizes, level=level, **common)


def _v2(dim, num_heads, sizes, level, **common) -> nn.Module:
    return LevelStackAttention(dim, num_heads, sizes, **common)


def _v3(dim, num_heads, sizes, level, **common) -> nn.Module:
    return TreeAttention(dim, num_heads, sizes, **common)


def _v4(dim, num_heads, sizes, level, **common) -> nn.Module:
    return TreeAttention(dim, num_heads, sizes, pass_values=True, **common)


VARIANTS: dict[str, Callable[..., nn.Module]] = {"v1": _v1, "v2": _v2, "v3": _v3, "v4": _v4}
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
        level: Tree level a ``v1`` layer attends at (0-based); ignored by other variants.
        attn_type: ``dot`` or ``cosine``.
        pos_bias: ``cpb`` (continuous MLP), ``table`` or ``none``.
        ffn_type: ``gated_dwconv`` (L3, default), ``leff`` or ``mlp`` (without L3).
        ffn_ratio: FFN hidden ratio.
        norm: ``pre`` or ``post`` (res-post-norm).
        shift: Offset the attention grid by half the top block (ablation).
        drop_path: Stochastic-depth probability of both branches.
        init: Init scheme (see :mod:`treeattn.layers.init`).
        backend: Attention backend: ``auto``, ``sdpa``, ``math`` or ``xformers``.
        data_format: ``BCHW`` (default) or ``BHWC`` (for stacking layers without permutes).
        device: Parameter device.
        dtype: Parameter dtype.

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
        init: str = "default",
        backend: str = "auto",
        data_format: str = "BCHW",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"{variant=} is not known; use one of {list(VARIANTS)}")
        if norm not in NORM_WIRINGS:
            raise ValueError(f"{norm=} is not known; use one of {list(NORM_WIRINGS)}")
        if data_format not in DATA_FORMATS:
            raise ValueError(f"{data_format=} is not known; use one of {list(DATA_FORMATS)}")
        if init == "zero_ln" and norm != "post":
            raise ValueError(f"{init=} needs norm='post' (it zeroes the post-branch LayerNorm)")
        sizes = normalize_patch_sizes(patch_sizes)
        factory = {"device": device, "dtype": dtype}
        attn = VARIANTS[variant](
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
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` (or ``(B, H, W, C)`` with ``data_format="BHWC"``) → same shape."""
        if x.dim() != 4 or x.shape[self._channel_axis] != self.dim:
            raise ValueError(
                f"HiIRLayer(dim={self.dim}, data_format={self.data_format!r}) got input of shape "
                f"{tuple(x.shape)}; expected {self.data_format} with {self.dim} channels "
                "(set data_format to match your layout)"
            )
        return self.from_bhwc(self.ffn(self.attn(self.to_bhwc(x))))

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, patch_sizes={self.patch_sizes}, {self.data_format}"
