"""Degradations: noise statistics, seeded replay, JPEG bytes, demosaicking and the registry."""

import hashlib
import io

import numpy as np
import pytest
import torch
from PIL import Image

from treeattn.data import embedded
from treeattn.data.degradations import (
    AWGN,
    DEGRADATIONS,
    JPEG,
    BayerMosaic,
    BicubicDown,
    Degradation,
    build_degradation,
)
from treeattn.data.io import read_image
from treeattn.data.jpeg import encode_jpeg, to_uint8
from treeattn.data.mosaic import BAYER_PATTERNS, bayer_masks

# sha256 of Kodak24's kodim01 crop (color_test/kodim01.png, 64x96 at the top-left) encoded at
# quality 10; the bytes were computed with Pillow, independently of OpenCV, and must stay equal.
PINNED_JPEG_SHA256 = "c92a0f6b68a915cb64469bc4ccf034aac1efbbd7c8469789f76bbc36d0c33ef6"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _kodim01_crop() -> torch.Tensor:
    return read_image(embedded.test_dir(color=True) / "kodim01.png")[:, :64, :96]


def test_awgn_fixed_sigma_statistics_and_no_clipping():
    img = torch.full((1, 256, 256), 0.5)
    out = AWGN(sigma=25)(img, _gen())
    assert abs((out - img).std().item() * 255 - 25) < 0.5
    assert abs((out - img).mean().item()) < 1e-3
    edge = AWGN(sigma=50)(torch.ones(1, 64, 64), _gen())
    assert edge.max() > 1  # the field adds noise without clipping
    assert AWGN(sigma=50, clip=True)(torch.ones(1, 64, 64), _gen()).max() <= 1


def test_awgn_blind_range_is_drawn_from_the_generator():
    deg = AWGN(sigma_range=(0, 50))
    img = torch.zeros(1, 128, 128)
    sigmas = [deg(img, _gen(seed)).std().item() * 255 for seed in range(8)]
    assert all(0 <= s <= 51 for s in sigmas)
    assert max(sigmas) - min(sigmas) > 5  # different seeds, different levels
    assert torch.equal(deg(img, _gen(3)), deg(img, _gen(3)))  # same seed, same draw


def test_jpeg_bytes_equal_pillow_and_pinned_hash():
    img = _kodim01_crop()
    ours = encode_jpeg(img, quality=10)
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buffer, format="JPEG", quality=10)  # 4:2:0 default
    assert ours == buffer.getvalue()
    assert hashlib.sha256(ours).hexdigest() == PINNED_JPEG_SHA256
    gray = read_image(embedded.test_dir(color=False) / "01.png")[:, :64, :64]
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(gray)[..., 0]).save(buffer, format="JPEG", quality=30)
    assert encode_jpeg(gray, quality=30) == buffer.getvalue()


def test_jpeg_degradation_keeps_channels_and_draws_integer_qualities():
    img = _kodim01_crop()
    out = JPEG(quality=10)(img, _gen())
    assert out.shape == img.shape and out.dtype == img.dtype
    assert 0 < (out - img).abs().mean() < 0.1
    gray = img[:1]
    assert JPEG(quality=40)(gray, _gen()).shape == gray.shape
    blind = JPEG(quality_range=(10, 40))
    outs = [blind(img, _gen(seed)) for seed in range(6)]
    assert len({hashlib.sha256(o.numpy().tobytes()).hexdigest() for o in outs}) > 1
    with pytest.raises(ValueError, match="quality"):
        JPEG(quality=0)


@pytest.mark.parametrize("pattern", list(BAYER_PATTERNS))
def test_bayer_mosaic_keeps_samples_and_matches_colour_demosaicing(pattern):
    colour = pytest.importorskip("colour_demosaicing")
    img = _kodim01_crop()
    out = BayerMosaic(pattern=pattern)(img, _gen())
    assert out.shape == img.shape
    assert torch.equal(out * 255, torch.round(out * 255))  # uint8 levels, like MATLAB
    masks = bayer_masks(64, 96, pattern)
    assert torch.equal(out[masks], img[masks])  # sampled values pass through
    cfa = (torch.round(img.double() * 255) * masks).sum(0).numpy()  # exact integer levels
    ref = colour.demosaicing_CFA_Bayer_Malvar2004(cfa, pattern)
    ref_levels = np.floor(np.clip(ref, 0, 255) + 0.5)
    ours_levels = torch.round(out.permute(1, 2, 0).double() * 255).numpy()
    assert np.array_equal(ours_levels, ref_levels)


def test_registry_builds_every_degradation_and_rejects_bad_settings():
    params = {
        "awgn": {"sigma": 15},
        "jpeg": {"quality": 20},
        "bicubic": {"scale": 2},
        "bayer": {"pattern": "RGGB"},
    }
    assert set(params) == set(DEGRADATIONS)
    img = torch.rand(3, 16, 16)
    for name, kwargs in params.items():
        deg = build_degradation(name, **kwargs)
        assert isinstance(deg, Degradation) and isinstance(deg, DEGRADATIONS[name])
        assert deg(img, _gen()).shape[0] == 3
    assert build_degradation("bicubic", scale=2)(img, _gen()).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="unknown degradation"):
        build_degradation("blur")
    with pytest.raises(ValueError, match="bad parameters"):
        build_degradation("awgn", sigma=25, sigma_typo=3)
    with pytest.raises(ValueError, match="exactly one"):
        AWGN(sigma=25, sigma_range=(0, 50))
    with pytest.raises(ValueError, match="positive integer"):
        BicubicDown(scale=1.5)
    with pytest.raises(ValueError, match="pattern"):
        BayerMosaic(pattern="RGBG")
