"""Image-quality metrics computed the way restoration papers compute them.

Conventions (all metrics):

* Inputs are float tensors in [0, 1], ``(C, H, W)`` for one image (a 0-d result) or
  ``(B, C, H, W)`` for a batch (a ``(B,)`` result of per-image values; take ``.mean()`` for the
  set average). Everything is computed in float64 on the [0, 255] scale. Integer tensors (e.g.
  uint8 images) raise ``TypeError``, and a ``target`` outside [0, 1] (e.g. 0-255 data) raises
  ``ValueError`` instead of giving a meaningless number; ``pred`` may stray outside [0, 1] (an
  unclamped network output). NaN in gives NaN out.
* ``round_uint8=True`` clamps both images to [0, 1] and rounds them to uint8 levels first (what
  saving the output as an 8-bit PNG does); not differentiable.
* ``y_channel=True`` converts RGB to the BT.601 Y channel of MATLAB's ``rgb2ycbcr``,
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (RGB in [0, 1], Y in [16, 235] / 255), unrounded.
* ``crop_border=k`` removes ``k`` pixels at every border before measuring.
* SSIM is the Gaussian SSIM of Wang et al. as in their MATLAB code: 11x11 window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, data range 255, 'valid' filtering, colour SSIM = mean over channels. It
  equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`` and is differentiable (torch throughout).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from treeattn.validate import check_bool, check_int

__all__ = ["lpips", "mae", "psnr", "psnr_b", "rgb_to_y", "ssim"]

_Y_WEIGHTS = (65.481, 128.553, 24.966)
_RANGE_SLACK = 1e-3  # float rounding of images stored in [0, 1]
_Y_OFFSET = 16.0


def rgb_to_y(img: Tensor) -> Tensor:
    """MATLAB ``rgb2ycbcr`` Y channel of RGB in [0, 1], returned in [16/255, 235/255].

    Args:
        img: ``(3, H, W)`` or ``(B, 3, H, W)`` RGB tensor in [0, 1].

    Returns:
        ``(1, H, W)`` or ``(B, 1, H, W)`` tensor, same dtype, not rounded.
    """
    if img.ndim not in (3, 4) or img.shape[-3] != 3:
        raise ValueError(f"rgb_to_y needs (3, H, W) or (B, 3, H, W), got {tuple(img.shape)}")
    weights = img.new_tensor(_Y_WEIGHTS)
    y = torch.einsum("...chw,c->...hw", img, weights) + _Y_OFFSET
    return (y / 255.0).unsqueeze(-3)


def _prepare(
    pred: Tensor, target: Tensor, *, crop_border: int, y_channel: bool, round_uint8: bool
) -> tuple[Tensor, Tensor]:
    """Validate, batch, round, convert and crop both images; return float64 on [0, 255]."""
    for name, image in (("pred", pred), ("target", target)):
        if not isinstance(image, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
        if not image.is_floating_point():
            raise TypeError(
                f"{name} has dtype {image.dtype}; metrics take float images in [0, 1] — "
                "convert uint8 images with x.float() / 255"
            )
    check_int("crop_border", crop_border)
    check_bool("y_channel", y_channel)
    check_bool("round_uint8", round_uint8)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}; "
            "metrics compare images of the same size"
        )
    if pred.ndim not in (3, 4):
        raise ValueError(f"images must be (C, H, W) or (B, C, H, W), got {tuple(pred.shape)}")
    if crop_border < 0:
        raise ValueError(f"{crop_border=} must be >= 0")
    if pred.numel() == 0:
        raise ValueError(f"images of shape {tuple(pred.shape)} are empty")
    low, high = target.min().item(), target.max().item()
    if low < -_RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
        raise ValueError(
            f"target holds values in [{low:.4g}, {high:.4g}], outside [0, 1]; metrics take "
            "images in [0, 1] (divide 0-255 data by 255)"
        )
    pair = [t.unsqueeze(0) if t.ndim == 3 else t for t in (pred, target)]
    pair = [t.to(torch.float64) for t in pair]
    if round_uint8:
        pair = [torch.round(t.clamp(0.0, 1.0) * 255.0) / 255.0 for t in pair]
    if y_channel:
        if pair[0].shape[1] != 3:
            raise ValueError(f"y_channel=True needs RGB input, got {pair[0].shape[1]} channels")
        pair = [rgb_to_y(t) for t in pair]
    h, w = pair[0].shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"{crop_border=} leaves nothing of a {h}x{w} image")
    if crop_border:
        pair = [t[..., crop_border : h - crop_border, crop_border : w - crop_border] for t in pair]
    return pair[0] * 255.0, pair[1] * 255.0


def _finish(values: Tensor, batched: bool) -> Tensor:
    return values if batched else values[0]


def psnr(
    pred: Tensor,
    target: Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    round_uint8: bool = False,
) -> Tensor:
    """Peak signal-to-noise ratio in dB, peak 255, per image (``inf`` for identical images).

    Args:
        pred: Restored image(s) in [0, 1].
        target: Ground truth of the same shape.
        crop_border: Pixels removed at each border.
        y_channel: Measure on the Y channel of RGB input.
        round_uint8: Clamp and round to uint8 levels first.

    Returns:
        0-d tensor for ``(C, H, W)`` input, ``(B,)`` for a batch (float64).
    """
    a, b = _prepare(
        pred, target, crop_border=crop_border, y_channel=y_channel, round_uint8=round_uint8
    )
    mse = (a - b).pow(2).mean(dim=(1, 2, 3))
    return _finish(10.0 * torch.log10(255.0**2 / mse), pred.ndim == 4)


def mae(
    pred: Tensor,
    target: Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    round_uint8: bool = False,
) -> Tensor:
    """Mean absolute error on the [0, 1] scale, per image; arguments as in :func:`psnr`."""
    a, b = _prepare(
        pred, target, crop_border=crop_border, y_channel=y_channel, round_uint8=round_uint8
    )
    return _finish((a - b).abs().mean(dim=(1, 2, 3)) / 255.0, pred.ndim == 4)


def _gaussian_taps(size: int, sigma: float, *, device: torch.device) -> Tensor:
    """Normalised 1-D Gaussian; its outer product is MATLAB's ``fspecial('gaussian')``."""
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    taps = torch.exp(-(coords**2) / (2 * sigma**2))
    return taps / taps.sum()


def _blur_valid(x: Tensor, taps: Tensor) -> Tensor:
    """Separable 'valid' filtering of the last two axes (faster than a 2-D float64 conv)."""
    x = torch.einsum("...hwk,k->...hw", x.unfold(-1, taps.numel(), 1), taps)
    return torch.einsum("...hwk,k->...hw", x.unfold(-2, taps.numel(), 1), taps)


def ssim(
    pred: Tensor,
    target: Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    round_uint8: bool = False,
    window_size: int = 11,
    sigma: float = 1.5,
) -> Tensor:
    """MATLAB-style Gaussian SSIM per image (mean over channels for colour).

    Args:
        pred: Restored image(s) in [0, 1].
        target: Ground truth of the same shape.
        crop_border: Pixels removed at each border.
        y_channel: Measure on the Y channel of RGB input.
        round_uint8: Clamp and round to uint8 levels first.
        window_size: Gaussian window side (odd); the field uses 11.
        sigma: Gaussian standard deviation; the field uses 1.5.

    Returns:
        0-d tensor for ``(C, H, W)`` input, ``(B,)`` for a batch (float64).
    """
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"{window_size=} must be a positive odd number")
    a, b = _prepare(
        pred, target, crop_border=crop_border, y_channel=y_channel, round_uint8=round_uint8
    )
    if min(a.shape[-2:]) < window_size:
        raise ValueError(f"image {tuple(a.shape[-2:])} is smaller than {window_size=}")
    taps = _gaussian_taps(window_size, sigma, device=a.device)
    moments = _blur_valid(torch.stack([a, b, a * a, b * b, a * b]), taps)
    mu_a, mu_b, e_aa, e_bb, e_ab = moments.unbind(0)
    var_a, var_b, cov = e_aa - mu_a**2, e_bb - mu_b**2, e_ab - mu_a * mu_b
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return _finish(ssim_map.mean(dim=(1, 2, 3)), pred.ndim == 4)


def _blocking_effect_factor(img: Tensor, block: int) -> Tensor:
    """Yim & Bovik's BEF per image and channel for ``(B, C, H, W)`` on [0, 255]."""
    h, w = img.shape[-2:]
    dx = (img[..., :, 1:] - img[..., :, :-1]).pow(2)  # differences between columns j and j+1
    dy = (img[..., 1:, :] - img[..., :-1, :]).pow(2)
    on_x = (torch.arange(w - 1, device=img.device) % block) == block - 1
    on_y = (torch.arange(h - 1, device=img.device) % block) == block - 1
    boundary_sum = dx[..., on_x].sum(dim=(-2, -1)) + dy[..., on_y, :].sum(dim=(-2, -1))
    other_sum = dx[..., ~on_x].sum(dim=(-2, -1)) + dy[..., ~on_y, :].sum(dim=(-2, -1))
    n_boundary = h * int(on_x.sum()) + w * int(on_y.sum())
    n_other = h * int((~on_x).sum()) + w * int((~on_y).sum())
    d_boundary = boundary_sum / max(n_boundary, 1)
    d_other = other_sum / max(n_other, 1)
    eta = math.log2(block) / math.log2(min(h, w))
    return torch.where(d_boundary > d_other, eta * (d_boundary - d_other), 0.0)


def psnr_b(
    pred: Tensor,
    target: Tensor,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    round_uint8: bool = False,
    block_size: int = 8,
) -> Tensor:
    """PSNR-B (Yim & Bovik, 2011): PSNR whose MSE is raised by the blocking-effect factor.

    ``MSE-B = MSE + BEF(pred)``, where BEF compares squared differences across ``block_size``
    block boundaries with those inside blocks, weighted by ``log2(B) / log2(min(H, W))``, and is
    zero when the boundaries are not rougher. Per channel, then averaged over channels.

    Args:
        pred: Restored (or JPEG-decoded) image(s) in [0, 1].
        target: Ground truth of the same shape.
        crop_border: Pixels removed at each border.
        y_channel: Measure on the Y channel of RGB input.
        round_uint8: Clamp and round to uint8 levels first.
        block_size: Coding block size (8 for JPEG), at least 2.

    Returns:
        0-d tensor for ``(C, H, W)`` input, ``(B,)`` for a batch (float64).

    Raises:
        TypeError: for non-float images or a non-integer ``block_size``.
        ValueError: for a ``block_size`` below 2, or images (after ``crop_border``) below 2×2,
            where the blocking-effect weight ``log2(B) / log2(min(H, W))`` is undefined.
    """
    check_int("block_size", block_size, minimum=2)
    a, b = _prepare(
        pred, target, crop_border=crop_border, y_channel=y_channel, round_uint8=round_uint8
    )
    if min(a.shape[-2:]) < 2:
        raise ValueError(
            f"psnr_b needs images of at least 2x2 pixels (after crop_border), got "
            f"{tuple(a.shape[-2:])}; use psnr for smaller images"
        )
    mse = (a - b).pow(2).mean(dim=(2, 3))
    values = 10.0 * torch.log10(255.0**2 / (mse + _blocking_effect_factor(a, block_size)))
    return _finish(values.mean(dim=1), pred.ndim == 4)


# torchvision checkpoints the ``lpips`` package loads for its backbones (from torch's hub cache).
_LPIPS_BACKBONES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


def lpips(pred: Tensor, target: Tensor, *, net: str = "alex") -> Tensor:
    """LPIPS distance per image; needs the ``lpips`` package and locally cached weights.

    Nothing is downloaded: the backbone checkpoint must already be in torch's hub cache
    (``torch.hub.get_dir()/checkpoints``), otherwise a :class:`FileNotFoundError` names the file.

    Args:
        pred: Restored RGB image(s) in [0, 1].
        target: Ground truth of the same shape.
        net: Backbone, one of ``alex``, ``vgg``, ``squeeze``.

    Returns:
        0-d tensor for ``(3, H, W)`` input, ``(B,)`` for a batch.

    Raises:
        ValueError: On an unknown ``net``.
        FileNotFoundError: If the backbone weights are not stored locally.
        ModuleNotFoundError: If the ``lpips`` package is not installed.
    """
    if net not in _LPIPS_BACKBONES:
        raise ValueError(
            f"{net=} is not an LPIPS backbone; choose one of {tuple(_LPIPS_BACKBONES)}"
        )
    checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / _LPIPS_BACKBONES[net]
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"LPIPS backbone weights {str(checkpoint)!r} are not stored locally and treeattn never "
            "downloads them; copy the torchvision checkpoint there to enable LPIPS"
        )
    try:
        import lpips as lpips_package
    except ImportError as err:
        raise ModuleNotFoundError(
            f"LPIPS needs the 'lpips' package and torchvision ({err}): pip install lpips "
            "torchvision (weights must be cached locally)"
        ) from err
    a, b = _prepare(pred, target, crop_border=0, y_channel=False, round_uint8=False)
    model = lpips_package.LPIPS(net=net, verbose=False).to(device=pred.device, dtype=torch.float64)
    values = model(a / 127.5 - 1.0, b / 127.5 - 1.0).flatten()
    return _finish(values, pred.ndim == 4)
