"""Whole-image restoration: padding to the model's needs, and tiling that matches whole images."""

from __future__ import annotations

import torch
from engine_testlib import TinyNet

from treeattn.engine.evaluate import make_restorer, metrics_for


class _Recorder(TinyNet):
    """TinyNet that records the input sizes it sees and refuses sizes it cannot take."""

    def __init__(self) -> None:
        super().__init__(dropout=0.0)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0 and min(x.shape[-2:]) >= 8
        self.sizes.append(tuple(x.shape[-2:]))
        return super().forward(x)


def test_padding_to_the_model_requirement_is_undone() -> None:
    torch.manual_seed(0)
    model = _Recorder().eval()
    x = torch.rand(1, 1, 5, 13)
    out = make_restorer(model, tile=None, overlap=0)(x)
    assert out.shape == x.shape
    assert model.sizes == [(8, 16)]


def test_tiled_restoration_equals_whole_image() -> None:
    torch.manual_seed(0)
    model = TinyNet(dropout=0.0).double().eval()  # receptive-field radius 2
    x = torch.rand(1, 1, 40, 37, dtype=torch.float64)
    whole = make_restorer(model, tile=None, overlap=0)(x)
    tiled = make_restorer(model, tile=16, overlap=8)(x)  # margin (8 - 4) // 2 = 2
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)


def test_metrics_follow_the_protocol() -> None:
    gt = torch.rand(2, 3, 16, 16)
    out = (gt + 0.05 * torch.randn_like(gt)).clamp(0, 1)
    rgb = metrics_for("denoise")(out, gt)
    y = metrics_for("sr_x2")(out, gt)  # Y channel, 2-pixel border
    assert set(rgb) == {"psnr", "ssim"} and rgb["psnr"].shape == (2,)
    assert not torch.allclose(rgb["psnr"], y["psnr"])
    assert torch.isinf(metrics_for("denoise")(gt, gt)["psnr"]).all()
