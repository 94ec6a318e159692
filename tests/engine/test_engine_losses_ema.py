"""Losses (incl. the local-weights perceptual term) and the weight EMA."""

from __future__ import annotations

import pytest
import torch
from engine_testlib import TinyNet
from safetensors.torch import save_file

from treeattn.engine.ema import ModelEMA
from treeattn.engine.losses import build_loss, vgg19_features


def test_pixel_losses() -> None:
    pred, target = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    assert build_loss("l1")(pred, target) == pytest.approx(0.5)
    assert build_loss("charbonnier")(pred, target) == pytest.approx((0.25 + 1e-6) ** 0.5)
    assert build_loss("smooth_l1")(pred, target) == pytest.approx(0.5 * 0.25)
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("l2")


def test_perceptual_needs_local_weights(tmp_path) -> None:
    with pytest.raises(ValueError, match="--vgg-weights"):
        build_loss("smooth_l1", perceptual_weight=0.1)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_loss("l1", perceptual_weight=0.1, vgg_weights=str(tmp_path / "vgg.pth"))
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a VGG-19 weights file"):
        build_loss("l1", perceptual_weight=0.1, vgg_weights=str(bad))


def test_perceptual_with_weights_file(tmp_path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "vgg19.safetensors"
    save_file({f"features.{k}": v for k, v in vgg19_features().state_dict().items()}, path)
    loss = build_loss("smooth_l1", perceptual_weight=1.0, vgg_weights=str(path))
    image = torch.rand(1, 1, 32, 32)
    assert float(loss(image, image)) == 0.0
    noisy = image + 0.1 * torch.randn_like(image)
    pixel_only = build_loss("smooth_l1")(noisy, image)
    assert float(loss(noisy, image)) > float(pixel_only)
    assert not any(p.requires_grad for p in loss.perceptual.parameters())


def test_ema_tracks_with_warmup_and_round_trips() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    ema = ModelEMA(model, decay=0.99)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)  # first update: decay min(0.99, 2/11)
    d = 2 / 11
    for name, value in ema.module.state_dict().items():
        torch.testing.assert_close(value, d * before[name] + (1 - d) * model.state_dict()[name])
    copy = ModelEMA(TinyNet(), decay=0.99)
    copy.load_state_dict(ema.state_dict())
    assert copy.updates == 1
    assert all(
        torch.equal(copy.module.state_dict()[k], v) for k, v in ema.state_dict()["module"].items()
    )
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(model, decay=1.0)
