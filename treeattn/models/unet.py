"""U-shaped Hi-IR model for denoising, JPEG artefacts, deblurring, demosaicking and weather.

The Hi-IR paper's U-shape (Restormer-like; `docs/models.md`): 3×3 conv ``in→dims[0]``; encoder
stages at ``dims[:-1]``, each followed by a downsample (3×3 conv ``d→d/2`` + pixel-unshuffle 2); the
latent stage at ``dims[-1]``; per decoder level an upsample (3×3 conv ``d→2d`` + pixel-shuffle 2),
concatenation with the skip, a 1×1 conv back to the level's width (level 1 keeps ``2·dims[0]``
unless ``reduce_level1``), and a stage; a 3×3 conv to ``out_chans`` plus the global residual.
"""

from __future__ import annotations

import torch
from torch import nn

from treeattn.layers.drop import drop_path_rates
from treeattn.layers.receptive import AxisOps, describe_axis
from treeattn.models.base import RestorationModel
from treeattn.models.configs import UNetConfig
from treeattn.models.global_residual import RESIDUAL_MODULES
from treeattn.models.stage import Stage

__all__ = ["RESIDUAL_MODULES", "HiIRUNet"]


def _conv(cin: int, cout: int, kernel: int, factory: dict) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, **factory)


class HiIRUNet(RestorationModel, architecture="unet"):
    """U-shaped Hi-IR network.

    Args:
        config: Every hyper-parameter (:class:`~treeattn.models.configs.UNetConfig`).
        name: Registry name, recorded in ``meta`` and in saved checkpoints.
        device: Parameter device.
        dtype: Parameter dtype.

    Example:
        >>> from treeattn.models import create_model
        >>> model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1)
        >>> model(torch.rand(2, 1, 30, 17)).shape
        torch.Size([2, 1, 30, 17])
    """

    config_class = UNetConfig

    def __init__(
        self,
        config: UNetConfig,
        *,
        name: str = "custom",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(config, name=name, device=device, dtype=dtype)
        cfg = config
        factory = {"device": device, "dtype": dtype}
        levels = len(cfg.dims) - 1
        rates = iter(drop_path_rates(cfg.drop_path, sum(cfg.depths + cfg.decoder_depths)))

        def stage(level: int, dim: int, depth: int) -> Stage:
            return Stage(
                cfg,
                dim,
                cfg.num_heads[level],
                cfg.tree(level),
                [next(rates) for _ in range(depth)],
                **factory,
            )

        self.embed = _conv(cfg.in_chans, cfg.dims[0], 3, factory)
        self.encoders = nn.ModuleList(stage(i, cfg.dims[i], cfg.depths[i]) for i in range(levels))
        self.downs = nn.ModuleList(
            nn.Sequential(_conv(d, d // 2, 3, factory), nn.PixelUnshuffle(2)) for d in cfg.dims[:-1]
        )
        self.latent = stage(levels, cfg.dims[-1], cfg.depths[-1])
        self.ups = nn.ModuleList(
            nn.Sequential(_conv(d, 2 * d, 3, factory), nn.PixelShuffle(2)) for d in cfg.dims[1:]
        )
        widths = [2 * cfg.dims[0] if not cfg.reduce_level1 else cfg.dims[0], *cfg.dims[1:-1]]
        self.reduces = nn.ModuleList(
            _conv(2 * cfg.dims[i], widths[i], 1, factory)
            if widths[i] != 2 * cfg.dims[i]
            else nn.Identity()
            for i in range(levels)
        )
        # Decoder stages are built deepest first so the drop-path schedule runs input → output.
        decoders = {i: stage(i, widths[i], cfg.decoder_depths[i]) for i in reversed(range(levels))}
        self.decoders = nn.ModuleList(decoders[i] for i in range(levels))
        self.output = _conv(widths[0], cfg.out_chans, 3, factory)
        self.residual = RESIDUAL_MODULES[cfg.residual](cfg.out_chans)
        # Any size ≥ 1 works: the input is padded to 2**levels (reflect, else replicate).
        # bf16 is tested per registered model; fp16 is not claimed (untested).
        self._finish(
            scale=1, multiple_of=2**levels, minimum=1, supports_bf16=True, supports_fp16=False
        )

    def forward_padded_ops(self, ops: AxisOps, axis: int) -> None:
        """Embed, the levels (each a branch: skip, and down → deeper → up), output conv."""
        describe_axis(self.embed, ops, axis)
        self._level_ops(ops, axis, 0)
        describe_axis(self.output, ops, axis)

    def _level_ops(self, ops: AxisOps, axis: int, level: int) -> None:
        if level == len(self.encoders):
            describe_axis(self.latent, ops, axis)
            return
        describe_axis(self.encoders[level], ops, axis)
        skip, deep = ops.branch(), ops.branch()
        describe_axis(self.downs[level], deep, axis)
        self._level_ops(deep, axis, level + 1)
        describe_axis(self.ups[level], deep, axis)
        ops.union([skip, deep])
        describe_axis(self.reduces[level], ops, axis)
        describe_axis(self.decoders[level], ops, axis)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder, latent, decoder with skips, output conv and residual; input already padded."""
        self.check_padded(x)
        feat = self.embed(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.latent(feat)
        for level in reversed(range(len(self.decoders))):
            feat = torch.cat([self.ups[level](feat), skips[level]], dim=1)
            feat = self.decoders[level](self.reduces[level](feat))
        return self.residual(self.output(feat), x)
