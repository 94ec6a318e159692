"""A stage: N layers, a stage-end block and a stage residual — shared by both model shapes.

The layer type is chosen when the stage is built, from :data:`LAYER_BUILDERS` (one builder per
layer class of :data:`~treeattn.layers.layer_types.LAYER_TYPES`); the "isolated" baseline is
``hiir`` with a one-level tree. Layers run channels-last inside the stage (no permutes between
layers); the stage takes and returns ``(B, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from einops import rearrange
from torch import nn

from treeattn.layers.hiir_layer import HiIRLayer
from treeattn.layers.layer_types import LAYER_TYPES
from treeattn.layers.stage_end import build_stage_end
from treeattn.layers.swin import SwinLayer
from treeattn.models.configs import LayerConfig

__all__ = ["LAYER_BUILDERS", "ChannelNorm", "Stage"]

LayerBuilder = Callable[..., nn.Module]


def _hiir_layer(
    cfg: LayerConfig,
    dim: int,
    num_heads: int,
    patch_sizes: Sequence,
    index: int,
    drop_path: float,
    *,
    device=None,
    dtype=None,
) -> nn.Module:
    # No init here: the model applies ``cfg.init`` once to all its modules.
    return HiIRLayer(
        dim,
        num_heads,
        patch_sizes,
        variant=cfg.variant,
        level=index % len(patch_sizes) if cfg.variant == "v1" else 0,
        attn_type=cfg.attn_type,
        pos_bias=cfg.pos_bias,
        ffn_type=cfg.ffn_type,
        ffn_ratio=cfg.ffn_ratio,
        norm=cfg.norm,
        shift=cfg.shift and index % 2 == 1,
        drop_path=drop_path,
        backend=cfg.backend,
        data_format="BHWC",
        init=None,
        device=device,
        dtype=dtype,
    )


def _swin_layer(
    cfg: LayerConfig,
    dim: int,
    num_heads: int,
    patch_sizes: Sequence,
    index: int,
    drop_path: float,
    *,
    device=None,
    dtype=None,
) -> nn.Module:
    return SwinLayer(
        dim,
        num_heads,
        cfg.window_size,
        shift=index % 2 == 1,
        ffn_ratio=cfg.ffn_ratio,
        drop_path=drop_path,
        backend=cfg.backend,
        data_format="BHWC",
        init=None,
        device=device,
        dtype=dtype,
    )


_BUILDERS: dict[type[nn.Module], LayerBuilder] = {HiIRLayer: _hiir_layer, SwinLayer: _swin_layer}
# Layer type (``LayerConfig.layer_type``, checked against LAYER_TYPES) → builder of one layer.
LAYER_BUILDERS: dict[str, LayerBuilder] = {
    name: _BUILDERS[layer_cls] for name, layer_cls in LAYER_TYPES.items()
}


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map."""

    def __init__(self, dim: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(rearrange(x, "b c h w -> b h w c"))
        return rearrange(y, "b h w c -> b c h w")


class Stage(nn.Module):
    """``x + end(layers(x))`` on ``(B, C, H, W)`` maps.

    Args:
        cfg: Layer settings (layer type, tree variant, FFN, norm, stage-end kind, ...).
        dim: Channels.
        num_heads: Attention heads.
        patch_sizes: The tree of the ``hiir`` layers (unused by ``swin`` layers).
        drop_paths: One stochastic-depth rate per layer; its length is the number of layers.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        cfg: LayerConfig,
        dim: int,
        num_heads: int,
        patch_sizes: Sequence,
        drop_paths: Sequence[float],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        build = LAYER_BUILDERS[cfg.layer_type]
        self.layers = nn.Sequential(
            *(
                build(cfg, dim, num_heads, patch_sizes, i, rate, device=device, dtype=dtype)
                for i, rate in enumerate(drop_paths)
            )
        )
        self.end = build_stage_end(cfg.stage_end, dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, C, H, W)``: layers channels-last, stage end, residual."""
        y = self.layers(rearrange(x, "b c h w -> b h w c"))
        out = self.end(rearrange(y, "b h w c -> b c h w"))
        # Without autograd the residual goes into the stage end's fresh output (a convolution's):
        # no new map, and the result stays channels-last like that output, so the next
        # convolution runs oneDNN's channels-last kernels (a 2048² restore: ~11–13 s instead of
        # 15–18). Those sum in another order than with an NCHW input: the restored image moves by
        # ~1e-6 against the autograd path (issue 19). Autocast sums that change dtype go plain.
        if torch.is_grad_enabled() or torch.result_type(out, x) != out.dtype:
            return x + out
        return out.add_(x)
