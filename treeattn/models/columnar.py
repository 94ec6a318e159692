"""Columnar Hi-IR model for super-resolution (×2, ×3, ×4, …) and ×1 restoration.

The Hi-IR paper's columnar model (`docs/models.md`): subtract the image mean; 3×3 conv ``in→C``;
LayerNorm; stages (each N layers, a stage-end block and a residual); LayerNorm; one more stage-end
block plus the shallow residual; 3×3 conv ``C→64`` + LeakyReLU; pixel-shuffle upsampler (per ×2:
conv ``64→256`` + shuffle 2; ×3: conv ``64→576`` + shuffle 3); 3×3 conv ``64→out``; add the mean
back.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from treeattn.layers.drop import drop_path_rates
from treeattn.layers.stage_end import build_stage_end
from treeattn.models.base import RestorationModel
from treeattn.models.configs import ColumnarConfig
from treeattn.models.stage import ChannelNorm, Stage

__all__ = ["HiIRColumnar", "build_upsampler", "upsampler_steps"]


def upsampler_steps(scale: int) -> list[int]:
    """Pixel-shuffle factors that make up ``scale``: ``[3]`` for 3, ``[2] * log2(scale)`` else."""
    return [3] if scale == 3 else [2] * int(math.log2(scale))


def build_upsampler(
    dim: int,
    feat: int,
    scale: int,
    out_chans: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Sequential:
    """Conv ``dim→feat`` + LeakyReLU, pixel-shuffle steps to ``scale``, conv ``feat→out_chans``.

    Args:
        dim: Body channels.
        feat: Upsampler channels.
        scale: 1 (no shuffle), 3 (one ×3 step) or a power of two (×2 steps).
        out_chans: Output channels.
        device: Parameter device.
        dtype: Parameter dtype.
    """
    factory = {"device": device, "dtype": dtype}
    layers: list[nn.Module] = [
        nn.Conv2d(dim, feat, 3, padding=1, **factory),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    for step in upsampler_steps(scale):
        layers += [
            nn.Conv2d(feat, feat * step * step, 3, padding=1, **factory),
            nn.PixelShuffle(step),
        ]
    layers.append(nn.Conv2d(feat, out_chans, 3, padding=1, **factory))
    return nn.Sequential(*layers)


class HiIRColumnar(RestorationModel, architecture="columnar"):
    """Columnar Hi-IR network (Hi-IR-B/-L for SR, and the CPU-sized variants).

    Args:
        config: Every hyper-parameter (:class:`~treeattn.models.configs.ColumnarConfig`).
        name: Registry name, recorded in ``meta`` and in saved checkpoints.
        device: Parameter device.
        dtype: Parameter dtype.

    Example:
        >>> from treeattn.models import create_model
        >>> model = create_model("hiir_sr_tiny_x2")
        >>> model(torch.rand(1, 3, 20, 13)).shape
        torch.Size([1, 3, 40, 26])
    """

    config_class = ColumnarConfig

    def __init__(
        self,
        config: ColumnarConfig,
        *,
        name: str = "custom",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(config, name=name, device=device, dtype=dtype)
        cfg = config
        factory = {"device": device, "dtype": dtype}
        mean = cfg.img_mean if cfg.img_mean is not None else (0.0,) * cfg.in_chans
        self.register_buffer(
            "mean", rearrange(torch.tensor(mean, **factory), "c -> 1 c 1 1"), persistent=False
        )
        self.global_residual = cfg.global_residual
        self.shallow = nn.Conv2d(cfg.in_chans, cfg.dim, 3, padding=1, **factory)
        self.norm_in = ChannelNorm(cfg.dim, **factory)
        rates = iter(drop_path_rates(cfg.drop_path, sum(cfg.depths)))
        self.stages = nn.Sequential(
            *(
                Stage(
                    cfg,
                    cfg.dim,
                    cfg.num_heads,
                    cfg.tree(),
                    [next(rates) for _ in range(depth)],
                    **factory,
                )
                for depth in cfg.depths
            )
        )
        self.norm_out = ChannelNorm(cfg.dim, **factory)
        self.body_end = build_stage_end(cfg.stage_end, cfg.dim, **factory)
        self.upsampler = build_upsampler(
            cfg.dim, cfg.upsampler_dim, cfg.scale, cfg.out_chans, **factory
        )
        # Any size ≥ 1 works: the input and every tree layer pad (reflect, else replicate).
        # bf16 is tested per registered model; fp16 is not claimed (untested).
        self._finish(
            scale=cfg.scale,
            multiple_of=self._grid_multiple(),
            minimum=1,
            supports_bf16=True,
            supports_fp16=False,
        )

    def _grid_multiple(self) -> int:
        """The block every layer's window grid tiles: the top tree block, or the Swin window."""
        cfg = self.config
        if cfg.layer_type == "swin":
            return cfg.window_size
        height, width = cfg.tree()[-1]
        return math.lcm(height, width)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Mean-shift, shallow conv, body with residual, upsampler; input already padded."""
        self.check_padded(x)
        feat = self.shallow(x - self.mean)
        body = self.body_end(self.norm_out(self.stages(self.norm_in(feat)))) + feat
        # ×1 with a global residual predicts a correction of the input; otherwise the image.
        return self.upsampler(body) + (x if self.global_residual else self.mean)
