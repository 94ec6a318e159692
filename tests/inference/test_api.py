"""restore_image: any size, tiling, the exact ×8 self-ensemble, and every bad input."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from inference_testlib import tiny_denoiser, tiny_sr

from treeattn import restore_image
from treeattn.inference import DIHEDRAL, Runner, select_runner
from treeattn.ops.padding import crop_to, pad_to_multiple
from treeattn.ops.tiling import tiled_apply


def _by_hand(model, x: torch.Tensor) -> torch.Tensor:
    """Mean of the 8 restorations of flipped/rotated inputs, each transformed back, by hand."""
    outputs = []
    with torch.no_grad():
        for flip in (False, True):
            for turns in range(4):
                t = torch.rot90(x.flip(-1) if flip else x, turns, dims=(-2, -1))
                y = torch.rot90(model(t), -turns, dims=(-2, -1))
                outputs.append(y.flip(-1) if flip else y)
    return torch.stack(outputs).mean(dim=0)


@pytest.mark.parametrize(
    ("make", "shape"),
    [(tiny_denoiser, (1, 1, 11, 17)), (tiny_sr, (1, 3, 9, 13))],
    ids=["denoiser", "sr_x2"],
)
def test_self_ensemble_is_the_mean_of_the_8_transformed_restorations(make, shape):
    model = make()
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    out = restore_image(model, x, self_ensemble=True)
    expected = _by_hand(model, x)
    scale = model.meta.scale
    assert out.shape == (*shape[:2], shape[2] * scale, shape[3] * scale)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    plain = restore_image(model, x)
    assert (out - plain).abs().max() > 1e-4, "the ensemble must differ from one pass"


def test_the_8_transforms_are_distinct_and_inverted_exactly():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    images = {(*t.apply(x).shape, *t.apply(x).flatten().tolist()) for t in DIHEDRAL}
    assert len(images) == 8
    for transform in DIHEDRAL:
        torch.testing.assert_close(transform.invert(transform.apply(x)), x, rtol=0, atol=0)


@pytest.mark.parametrize("size", [(1, 1), (7, 30), (33, 32)])
def test_any_size_single_image_matches_the_model(size):
    model = tiny_sr()
    x = torch.rand(3, *size)
    with torch.no_grad():
        expected = model(x[None])[0]
    torch.testing.assert_close(restore_image(model, x), expected)


def test_tiles_go_through_tiled_apply_and_cover_the_image():
    model = tiny_denoiser()
    x = torch.rand(2, 1, 23, 37)
    out = restore_image(model, x, tile=16, overlap=4)
    with torch.no_grad():
        # Tiles of the image padded once to the model's multiple (as the engine validates),
        # so border tiles see the whole image's padding; cropped back.
        padded, size = pad_to_multiple(x, model.meta.multiple_of)
        expected = crop_to(tiled_apply(model, padded, tile=16, overlap=4, scale=1), size)
        whole = model(x)
    torch.testing.assert_close(out, expected)
    assert out.shape == whole.shape
    runner = select_runner(model, tile=None, overlap=0)
    assert isinstance(runner, Runner) and runner.model is model and runner.tile is None
    torch.testing.assert_close(runner(x), whole)
    # a tile larger than the image is the whole image
    torch.testing.assert_close(restore_image(model, x, tile=64, overlap=4), whole)


def test_dtype_device_and_mode_are_kept():
    model = tiny_denoiser().train()
    x = torch.rand(1, 10, 12, dtype=torch.float64)
    out = restore_image(model, x)
    assert out.dtype == torch.float64 and out.device == x.device and model.training
    assert not out.requires_grad


def test_bf16_runs_close_to_float32():
    model = tiny_denoiser()
    x = torch.rand(1, 1, 12, 16)
    out = restore_image(model, x, bf16=True)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, restore_image(model, x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize(
    ("img", "kwargs", "error", "match"),
    [
        ([[0.5]], {}, TypeError, "must be a torch.Tensor"),
        (torch.zeros(1, 8, 8, dtype=torch.uint8), {}, TypeError, r"img.float\(\) / 255"),
        (torch.rand(8, 8), {}, ValueError, r"\(C, H, W\) or \(B, C, H, W\)"),
        (torch.rand(1, 1, 1, 8, 8), {}, ValueError, r"\(C, H, W\) or \(B, C, H, W\)"),
        (torch.rand(1, 0, 8), {}, ValueError, r"\(C, H, W\)"),
        (torch.rand(3, 8, 8), {}, ValueError, "takes 1-channel images, got 3 channels"),
        (torch.rand(1, 8, 8), {"tile": 0}, ValueError, "tile=0 must be a positive"),
        (torch.rand(1, 8, 8), {"tile": 8, "overlap": 8}, ValueError, "overlap=8"),
        (torch.rand(1, 8, 8), {"tile": 8, "overlap": -1}, ValueError, "overlap=-1"),
    ],
)
def test_bad_input_is_refused_with_the_fix(img, kwargs, error, match):
    with pytest.raises(error, match=match):
        restore_image(tiny_denoiser(), img, **kwargs)


def test_not_a_treeattn_model():
    with pytest.raises(TypeError, match="needs a treeattn model"):
        restore_image(torch.nn.Identity(), torch.rand(1, 4, 4))


def test_bf16_on_a_model_that_does_not_claim_it():
    model = tiny_denoiser()
    model.meta = dataclasses.replace(model.meta, supports_bf16=False)
    with pytest.raises(ValueError, match="does not claim bfloat16"):
        restore_image(model, torch.rand(1, 8, 8), bf16=True)


def test_dual_pixel_model_says_how_to_stack_the_views():
    model = tiny_denoiser(channels=3, in_chans=6, residual="view_mean", task="defocus")
    with pytest.raises(ValueError, match=r"2 views of 3 channels stacked.*torch.cat"):
        restore_image(model, torch.rand(3, 8, 8))
    assert restore_image(model, torch.rand(6, 8, 8)).shape == (3, 8, 8)
