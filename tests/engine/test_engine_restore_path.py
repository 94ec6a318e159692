"""One restore path: the engine's validation scores exactly what `treeattn restore` returns."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from torch.utils.data import DataLoader

import treeattn.ops.bands as bands
from treeattn import create_model, restore_image
from treeattn.engine.config import parse_config
from treeattn.engine.evaluate import make_restorer, metrics_for, validate
from treeattn.ops.bands import band_execution

# A three-level U-shape with tiny trees (multiple_of 4), seeded: nothing is trained.
TINY = {
    "dims": (4, 8, 16),
    "depths": (1, 1, 1),
    "decoder_depths": (1, 1),
    "num_heads": (1, 1, 1),
    "patch_sizes": ((2, 4), (2, 4), (2, 4)),
}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("hiir_unet_tiny", in_chans=1, out_chans=1, **TINY).eval()


@pytest.fixture
def tile_counter(monkeypatch):
    """Counts the band-wise tiles the layers run (so a test knows bands really ran)."""
    counts = {"tiles": 0}
    real = bands.tile_shape

    def counting(height, width, block, target):
        shape = real(height, width, block, target)
        counts["tiles"] += -(-height // shape[0]) * -(-width // shape[1])
        return shape

    monkeypatch.setattr(bands, "tile_shape", counting)
    return counts


@pytest.fixture
def fresh_accelerate_state():
    """An accelerator of its own, not the accelerate state of earlier tests."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.mark.parametrize("flags", [[], ["--tile", "16", "--tile-overlap", "4"]], ids=str)
def test_validation_restores_bit_for_bit_what_restore_image_returns(
    model, flags, denoise_spec, tile_counter
):
    cfg = parse_config(denoise_spec, flags)  # the settings as a recipe run reads them
    img = torch.rand(1, 27, 38, generator=torch.Generator().manual_seed(3))
    with band_execution(min_pixels=0, tile_pixels=48):  # small maps run band-wise too
        validated = make_restorer(model, tile=cfg.tile, overlap=cfg.tile_overlap)(img[None])
        restored = restore_image(model, img, tile=cfg.tile, overlap=cfg.tile_overlap)
    assert tile_counter["tiles"] > 0
    assert validated.shape == (1, *img.shape)
    assert torch.equal(validated[0], restored)


def test_validation_psnr_is_the_psnr_of_restore_image(model, fresh_accelerate_state):
    generator = torch.Generator().manual_seed(5)
    gts = [torch.rand(1, 21 + i, 30 - i, generator=generator) for i in range(3)]
    lqs = [(gt + 0.1 * torch.randn(gt.shape, generator=generator)).clamp(0, 1) for gt in gts]
    items = [
        {"lq": lq, "gt": gt, "name": f"img{i}.png"}
        for i, (lq, gt) in enumerate(zip(lqs, gts, strict=True))
    ]
    accelerator = Accelerator(cpu=True)
    loader = accelerator.prepare(DataLoader(items, batch_size=1))
    metrics = metrics_for("denoise")
    scored = validate(accelerator, make_restorer(model), loader, metrics=metrics)
    restored = [restore_image(model, lq) for lq in lqs]
    psnr = torch.cat(
        [metrics(out[None], gt[None])["psnr"] for out, gt in zip(restored, gts, strict=True)]
    )
    assert scored["images"] == 3
    assert scored["psnr"] == float(psnr.double().mean())


def test_padded_forward_moved_to_the_runner_with_a_warning():
    from treeattn.inference import runner

    with pytest.warns(DeprecationWarning, match=r"import it from treeattn\.inference\.runner"):
        from treeattn.engine.evaluate import padded_forward
    assert padded_forward is runner.padded_forward
