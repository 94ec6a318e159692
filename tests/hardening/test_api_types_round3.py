"""Python API argument types (round 3): evaluate_folder's restore function, JPEG qualities,
PSNR-B block sizes and tiny images, tiled_apply on integer images."""

from __future__ import annotations

import pytest
import torch

from treeattn.data.benchmark import evaluate_folder
from treeattn.data.degradations import AWGN, JPEG
from treeattn.data.io import write_image
from treeattn.metrics import psnr_b
from treeattn.ops.tiling import tiled_apply


def test_evaluate_folder_names_what_restore_must_return(tmp_path):
    write_image(tmp_path / "a.png", torch.rand(1, 12, 12))
    with pytest.raises(TypeError, match=r"restore returned a list .* one torch\.Tensor"):
        evaluate_folder(
            lambda x: [x], tmp_path, degradation=AWGN(sigma=5), protocol="denoise", channels=1
        )
    table = evaluate_folder(
        lambda x: x, tmp_path, degradation=AWGN(sigma=5), protocol="denoise", channels=1
    )
    assert len(table.rows) == 1


@pytest.mark.parametrize(
    "kwargs", [{"quality": 50.5}, {"quality_range": (10, 40.5)}, {"quality_range": (9.9, 40)}]
)
def test_jpeg_refuses_fractional_qualities(kwargs):
    with pytest.raises(ValueError, match="whole numbers"):
        JPEG(**kwargs)


def test_jpeg_takes_whole_float_qualities_as_integers():
    assert (JPEG(quality=50.0).low, JPEG(quality=50.0).high) == (50, 50)
    img = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0))
    whole, integer = JPEG(quality=50.0), JPEG(quality=50)
    torch.testing.assert_close(
        whole(img, torch.Generator().manual_seed(1)), integer(img, torch.Generator().manual_seed(1))
    )


@pytest.mark.parametrize(
    ("block_size", "error"), [(0, ValueError), (1, ValueError), (2.0, TypeError)]
)
def test_psnr_b_block_size_is_checked(block_size, error):
    img = torch.rand(1, 16, 16)
    with pytest.raises(error, match="block_size"):
        psnr_b(img, img, block_size=block_size)


def test_psnr_b_refuses_images_below_two_pixels():
    with pytest.raises(ValueError, match="at least 2x2"):
        psnr_b(torch.rand(1, 1, 9), torch.rand(1, 1, 9))
    value = psnr_b(torch.rand(1, 2, 9) * 0.5, torch.rand(1, 2, 9) * 0.5)
    assert torch.isfinite(value)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_tiled_apply_refuses_integer_images(dtype):
    x = (torch.rand(1, 1, 9, 9) * 200).to(dtype)
    with pytest.raises(TypeError, match=f"x has dtype {dtype}"):
        tiled_apply(lambda t: t, x, tile=4, overlap=2)


def test_tiled_apply_on_whole_number_floats_is_exact():
    x = torch.randint(0, 255, (1, 1, 9, 9)).float()
    torch.testing.assert_close(tiled_apply(lambda t: t, x, tile=4, overlap=2), x)
