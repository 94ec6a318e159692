"""Hostile inputs to data reading, datasets, degradations, tiling and metrics."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
import torch

from treeattn.data.datasets import DegradedFolder, PairedFolder
from treeattn.data.degradations import AWGN, JPEG
from treeattn.data.io import list_images, read_image, write_image
from treeattn.metrics import mae, psnr, ssim
from treeattn.ops.tiling import tile_starts, tiled_apply


def _write(path, array):
    assert cv2.imwrite(str(path), array)
    return path


def _gray(size=(8, 8)):
    return np.arange(size[0] * size[1], dtype=np.uint8).reshape(size)


def _png_gray_alpha(path, gray, alpha):
    """A colour-type-4 (gray + alpha) PNG, written by hand (OpenCV cannot write this type)."""
    height, width = gray.shape
    rows = b"".join(
        b"\x00" + np.stack([gray[r], alpha[r]], axis=-1).tobytes() for r in range(height)
    )

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 4, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def test_gray_alpha_png_is_read_as_gray(tmp_path):
    gray = _gray((4, 5))
    path = _png_gray_alpha(tmp_path / "ga.png", gray, np.full_like(gray, 200))
    img = read_image(path)
    assert img.shape == (1, 4, 5)
    assert torch.equal(img[0], torch.from_numpy(gray).float() / 255)


def test_header_claiming_a_huge_image_is_a_value_error(tmp_path):
    path = _write(tmp_path / "x.png", _gray())
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 100000, 100000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"x\.png' could not be decoded"):
        read_image(path)


def test_one_pixel_image_with_scale_2_is_refused_not_emptied(tmp_path):
    _write(tmp_path / "one.png", np.zeros((1, 1), np.uint8))
    data = DegradedFolder(tmp_path, degradation=AWGN(sigma=5), scale=2)
    with pytest.raises(ValueError, match=r"one\.png.*1x1 image is smaller than scale=2"):
        data[0]


def test_one_pixel_image_at_scale_1_is_kept(tmp_path):
    _write(tmp_path / "one.png", np.full((1, 1), 255, np.uint8))
    item = DegradedFolder(tmp_path, degradation=AWGN(sigma=0))[0]
    assert item["gt"].shape == (1, 1, 1) and item["gt"].item() == 1.0


def test_same_stem_with_two_suffixes_is_refused(tmp_path):
    _write(tmp_path / "x.png", _gray())
    _write(tmp_path / "x.jpg", _gray())
    with pytest.raises(ValueError, match="two images named 'x'"):
        list_images(tmp_path)


def test_folder_mixing_gray_and_colour_is_named(tmp_path):
    _write(tmp_path / "a.png", _gray())
    _write(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
    data = DegradedFolder(tmp_path, degradation=AWGN(sigma=5))
    with pytest.raises(ValueError, match=r"b\.png' has 3 channel.*channels=1 or channels=3"):
        data[1]
    converted = DegradedFolder(tmp_path, degradation=AWGN(sigma=5), channels=3)
    assert converted[0]["gt"].shape[0] == converted[1]["gt"].shape[0] == 3


def test_gray_inputs_paired_with_colour_ground_truth_are_refused(tmp_path):
    (tmp_path / "lq").mkdir()
    (tmp_path / "gt").mkdir()
    _write(tmp_path / "lq" / "a.png", _gray())
    _write(tmp_path / "gt" / "a.png", np.zeros((8, 8, 3), np.uint8))
    data = PairedFolder(tmp_path / "lq", tmp_path / "gt")
    with pytest.raises(ValueError, match="1 channel"):
        data[0]


@pytest.mark.parametrize("sigma", [float("nan"), float("inf")])
def test_awgn_non_finite_sigma_is_refused(sigma):
    with pytest.raises(ValueError, match="must be a finite number"):
        AWGN(sigma=sigma)


def test_awgn_nan_range_is_refused():
    with pytest.raises(ValueError, match="finite"):
        AWGN(sigma_range=(0, float("nan")))


def test_jpeg_quality_of_the_wrong_type():
    with pytest.raises(TypeError, match="quality"):
        JPEG(quality="high")


def test_degradation_of_a_uint8_image_is_refused():
    with pytest.raises(TypeError, match="float image"):
        AWGN(sigma=5)(torch.zeros(1, 4, 4, dtype=torch.uint8), torch.Generator())


def test_write_image_refuses_nan(tmp_path):
    img = torch.rand(1, 4, 4)
    img[0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="1 NaN values"):
        write_image(tmp_path / "o.png", img)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("tile", [1, 2])
def test_tiled_apply_with_tiny_tiles_is_exact_for_pointwise_fns(tile):
    x = torch.rand(1, 2, 5, 7)
    torch.testing.assert_close(tiled_apply(torch.sigmoid, x, tile=tile, overlap=0), x.sigmoid())


@pytest.mark.parametrize("kwargs", [{"tile": 4.0, "overlap": 1}, {"tile": 4, "overlap": 1.5}])
def test_tiled_apply_float_sizes_are_type_errors(kwargs):
    with pytest.raises(TypeError, match="must be an int"):
        tiled_apply(torch.sigmoid, torch.rand(1, 1, 9, 9), **kwargs)


def test_tiled_apply_checks_scale_when_one_tile_fits():
    def up2(t):
        return torch.nn.functional.interpolate(t, scale_factor=2)

    with pytest.raises(ValueError, match="check scale=3"):
        tiled_apply(up2, torch.rand(1, 1, 4, 4), tile=16, overlap=2, scale=3)


def test_tile_starts_zero_length_is_refused():
    with pytest.raises(ValueError, match="length=0"):
        tile_starts(0, tile=4, overlap=1)


def test_psnr_on_0_255_data_is_refused():
    target = torch.rand(3, 8, 8) * 255
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*divide 0-255 data by 255"):
        psnr(target * 0.9, target)


@pytest.mark.parametrize("metric", [psnr, ssim, mae])
def test_metrics_refuse_uint8(metric):
    image = torch.zeros(3, 16, 16, dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"x\.float\(\) / 255"):
        metric(image, image)


def test_metric_flags_must_be_bools():
    image = torch.rand(3, 8, 8)
    with pytest.raises(TypeError, match="y_channel='yes' must be a bool"):
        psnr(image, image, y_channel="yes")


def test_psnr_nan_in_nan_out():
    target = torch.rand(3, 8, 8)
    pred = target.clone()
    pred[0, 0, 0] = float("nan")
    assert torch.isnan(psnr(pred, target))


@pytest.mark.parametrize(
    "option", [{"augment": "no"}, {"channels": True}, {"scale": 2.0}, {"repeat": "2"}]
)
def test_dataset_options_of_the_wrong_type(tmp_path, option):
    _write(tmp_path / "a.png", _gray())
    with pytest.raises(TypeError, match=next(iter(option))):
        DegradedFolder(tmp_path, degradation=AWGN(sigma=5), **option)


def test_awgn_clip_must_be_a_bool():
    with pytest.raises(TypeError, match="clip='no' must be a bool"):
        AWGN(sigma=5, clip="no")
