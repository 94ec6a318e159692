"""MATLAB-compatible bicubic resize: the published Set5 LR files and the bicubic baselines."""

import pytest
import torch

from treeattn.data import embedded
from treeattn.data.degradations import BicubicDown
from treeattn.data.io import read_image
from treeattn.data.resize import imresize
from treeattn.data.transforms import mod_crop
from treeattn.metrics import psnr

# Published "Bicubic" rows of Set5 (Y channel, crop = scale), with the tolerance.
BICUBIC_SET5 = {2: (33.66, 33.70), 3: (30.38, 30.42), 4: (28.41, 28.45)}


def _set5(scale: int):
    for hr_path in sorted(embedded.sr_test_dir().glob("*.png")):
        hr = mod_crop(read_image(hr_path), scale)
        lr = read_image(embedded.sr_lr_dir(scale) / f"{hr_path.stem}x{scale}.png")
        yield hr, lr


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downsampling_reproduces_matlab_lr_files(scale):
    down = BicubicDown(scale=scale)
    same = total = 0
    worst = 0
    for hr, lr in _set5(scale):
        ours = down(hr, torch.Generator().manual_seed(0))
        diff = (torch.round(ours.double() * 255) - torch.round(lr.double() * 255)).abs()
        same += int((diff == 0).sum())
        total += diff.numel()
        worst = max(worst, int(diff.max()))
    assert same / total >= 0.999
    assert worst <= 1


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_upsampling_baseline_of_set5(scale):
    values = [
        psnr(imresize(lr, scale=scale), hr, crop_border=scale, y_channel=True, round_uint8=True)
        for hr, lr in _set5(scale)
    ]
    low, high = BICUBIC_SET5[scale]
    assert low <= torch.stack(values).mean().item() <= high


def test_resize_matches_bicubic_pytorch_on_odd_sizes():
    core = pytest.importorskip("bicubic_pytorch.core")
    torch.manual_seed(0)
    img = torch.rand(1, 3, 37, 41, dtype=torch.float64)
    for scale in (1 / 3, 0.5, 2.0, 3.0):
        ref = core.imresize(img, scale=scale)
        assert torch.allclose(imresize(img, scale=scale), ref, atol=1e-6)
    ref = core.imresize(img, sizes=(20, 50))
    assert torch.allclose(imresize(img, size=(20, 50)), ref, atol=1e-6)


def test_constant_image_stays_constant_and_sizes_follow_matlab():
    img = torch.full((1, 13, 10), 0.25)
    out = imresize(img, scale=0.25)
    assert out.shape == (1, 4, 3)  # ceil(13 / 4), ceil(10 / 4)
    assert torch.allclose(out, torch.full_like(out, 0.25))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img)
    with pytest.raises(ValueError, match="multiple"):
        BicubicDown(scale=4)(img, torch.Generator())
