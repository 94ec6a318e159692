"""Image reading/writing: bit depths, formats, channel order, gray conversion and errors."""

import cv2
import numpy as np
import pytest
import torch

from treeattn.data.io import list_images, read_image, to_gray, write_image
from treeattn.metrics import rgb_to_y


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_8bit_round_trip_is_exact(tmp_path, suffix, channels):
    torch.manual_seed(0)
    img = torch.randint(0, 256, (channels, 9, 7)).float() / 255
    write_image(tmp_path / f"a{suffix}", img)
    back = read_image(tmp_path / f"a{suffix}")
    assert back.dtype == torch.float32 and back.shape == img.shape
    assert torch.equal(back, img)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_stays_16bit(tmp_path, suffix):
    torch.manual_seed(0)
    levels = torch.randint(0, 65536, (3, 8, 8))
    levels[0, 0, 0] = 1  # not representable in 8 bits
    write_image(tmp_path / f"a{suffix}", levels.float() / 65535, bit_depth=16)
    raw = cv2.imread(str(tmp_path / f"a{suffix}"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    back = read_image(tmp_path / f"a{suffix}")
    assert torch.equal(torch.round(back.double() * 65535).long(), levels)


def test_rgb_order_on_disk_is_opencv_bgr(tmp_path):
    red = torch.zeros(3, 4, 4)
    red[0] = 1.0
    write_image(tmp_path / "red.png", red)
    raw = cv2.imread(str(tmp_path / "red.png"))
    assert raw[..., 2].min() == 255 and raw[..., :2].max() == 0
    assert torch.equal(read_image(tmp_path / "red.png"), red)


def test_jpeg_reads_close_to_source(tmp_path):
    img = torch.linspace(0, 1, 64).expand(3, 64, 64).clone()
    write_image(tmp_path / "a.jpg", img)
    assert (read_image(tmp_path / "a.jpg") - img).abs().mean() < 0.02


def test_gray_conversions(tmp_path):
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, 10, 12)).float() / 255
    write_image(tmp_path / "c.png", img)
    luma = read_image(tmp_path / "c.png", channels=1)
    rgb = np.ascontiguousarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    opencv_gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    assert luma.shape == (1, 10, 12)
    assert np.abs(luma[0].numpy() - opencv_gray).max() <= 0.5 / 255 + 1e-6
    y = read_image(tmp_path / "c.png", channels=1, gray_method="y")
    assert torch.equal(y * 255, torch.round(rgb_to_y(img) * 255))
    assert torch.equal(to_gray(img, method="y"), y)
    write_image(tmp_path / "g.png", luma)
    as_rgb = read_image(tmp_path / "g.png", channels=3)
    assert as_rgb.shape == (3, 10, 12) and torch.equal(as_rgb[0], as_rgb[2])
    with pytest.raises(ValueError, match="gray conversion"):
        to_gray(img, method="average")


def test_missing_empty_and_corrupted_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.png"):
        read_image(tmp_path / "nothere.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.png.*empty"):
        read_image(tmp_path / "empty.png")
    write_image(tmp_path / "ok.png", torch.rand(3, 32, 32))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:40])
    with pytest.raises(ValueError, match=r"cut\.png.*could not be decoded"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "text.jpg").write_bytes(b"this is not an image at all")
    with pytest.raises(ValueError, match=r"text\.jpg"):
        read_image(tmp_path / "text.jpg")


def test_write_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="16-bit"):
        write_image(tmp_path / "a.jpg", torch.rand(3, 4, 4), bit_depth=16)
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "a.gif", torch.rand(3, 4, 4))


def test_list_images_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        list_images(tmp_path / "missing_dir")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty_dir" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="empty_dir"):
        list_images(tmp_path / "empty_dir")
