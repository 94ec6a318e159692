"""Metrics against scikit-image's reference implementation and hand-computed cases."""

import math

import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from treeattn.data import embedded
from treeattn.data.io import read_image
from treeattn.metrics import lpips, mae, psnr, psnr_b, rgb_to_y, ssim


def _pair(color: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real ground truths (128x128 crops) and noisy, clipped versions of them."""
    torch.manual_seed(0)
    files = sorted(embedded.test_dir(color=color).glob("*.png"))[:2]
    gt = torch.stack([read_image(f)[:, 40:168, 60:188] for f in files])
    noisy = (gt + 0.1 * torch.randn_like(gt)).clamp(0, 1)
    return noisy, gt


def _np255(img: torch.Tensor):
    """(C, H, W) in [0, 1] -> (H, W, C) float64 numpy on [0, 255]."""
    return (img.double() * 255).permute(1, 2, 0).numpy()


def _sk_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return structural_similarity(
        _np255(a),
        _np255(b),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=2,
    )


@pytest.mark.parametrize("color", [False, True])
def test_psnr_ssim_match_scikit_image_per_image(color):
    noisy, gt = _pair(color)
    ours_psnr, ours_ssim = psnr(noisy, gt), ssim(noisy, gt)
    assert ours_psnr.shape == (2,) and ours_ssim.shape == (2,)
    for i in range(2):
        ref_psnr = peak_signal_noise_ratio(_np255(gt[i]), _np255(noisy[i]), data_range=255)
        assert abs(ours_psnr[i].item() - ref_psnr) < 1e-6
        assert abs(ours_ssim[i].item() - _sk_ssim(noisy[i], gt[i])) < 1e-6
        assert abs(psnr(noisy[i], gt[i]).item() - ref_psnr) < 1e-6  # unbatched -> 0-d
    assert psnr(noisy[0], gt[0]).ndim == 0


def test_y_channel_crop_and_rounding_follow_the_reference():
    noisy, gt = _pair(color=True)
    a, b = noisy[0], gt[0]
    rounded = torch.round(a.double() * 255) / 255
    y_ref = rgb2ycbcr(rounded.permute(1, 2, 0).numpy())[..., 0]
    assert torch.allclose(rgb_to_y(rounded)[0] * 255, torch.from_numpy(y_ref), atol=1e-9)

    def y255_cropped(img):
        return (rgb_to_y(img.double())[:, 4:-4, 4:-4] * 255).permute(1, 2, 0).numpy()

    ref_psnr = peak_signal_noise_ratio(y255_cropped(b), y255_cropped(rounded), data_range=255)
    ours = psnr(a, b, crop_border=4, y_channel=True, round_uint8=True).item()
    assert abs(ours - ref_psnr) < 1e-6
    ref_ssim = structural_similarity(
        y255_cropped(rounded)[..., 0],
        y255_cropped(b)[..., 0],
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert abs(ssim(a, b, crop_border=4, y_channel=True, round_uint8=True).item() - ref_ssim) < 1e-6


def test_mae_and_identical_images():
    gt = torch.full((1, 16, 16), 0.5)
    assert mae(gt + 0.1, gt).item() == pytest.approx(0.1)
    assert math.isinf(psnr(gt, gt).item())
    torch.manual_seed(1)
    img = torch.rand(1, 16, 16)
    assert ssim(img, img).item() == pytest.approx(1.0)


def test_ssim_is_differentiable():
    torch.manual_seed(0)
    gt = torch.rand(1, 3, 24, 24)
    pred = (gt + 0.05 * torch.randn_like(gt)).requires_grad_()
    ssim(pred, gt).sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_psnr_b_on_a_hand_computed_blocky_image():
    # Four constant 8x8 blocks: all differences sit on block boundaries.
    v = 80.0 / 255.0
    pred = torch.zeros(1, 16, 16, dtype=torch.float64)
    pred[:, :8, 8:] = v
    pred[:, 8:, :8] = v
    # D_B = 80^2 on the 32 boundary pairs, D_Bc = 0, eta = log2(8) / log2(16) = 3/4
    expected = 10 * math.log10(255.0**2 / (0.75 * 80.0**2))
    assert psnr_b(pred, pred).item() == pytest.approx(expected, abs=1e-9)
    smooth = torch.linspace(0, 1, 16).expand(1, 16, 16)  # equal steps everywhere: BEF = 0
    target = smooth.flip(-1)
    assert psnr_b(smooth, target).item() == pytest.approx(psnr(smooth, target).item())


def test_bad_input_raises_clear_errors():
    a = torch.rand(1, 16, 16)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, torch.rand(1, 16, 17))
    with pytest.raises(ValueError, match="RGB"):
        ssim(a, a, y_channel=True)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=8)
    with pytest.raises(ValueError, match="window_size"):
        ssim(a, a, window_size=4)


def test_lpips_needs_local_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    img = torch.rand(3, 16, 16)
    with pytest.raises(FileNotFoundError, match="never"):
        lpips(img, img)
    with pytest.raises(ValueError, match="backbone"):
        lpips(img, img, net="resnet")
