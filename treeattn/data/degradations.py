"""Synthetic degradations with one calling convention, chosen by name.

Every degradation is a callable ``degradation(img, generator) -> Tensor`` taking a ``(C, H, W)``
float image in [0, 1] and a CPU :class:`torch.Generator` that supplies all of its randomness (so a
run seeded per sample replays exactly). Recipes pick one by name::

    deg = build_degradation("awgn", sigma_range=(0, 50))
    lq = deg(gt, torch.Generator().manual_seed(0))
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from treeattn.data.jpeg import jpeg_roundtrip
from treeattn.data.mosaic import BAYER_PATTERNS, demosaic_malvar, mosaic
from treeattn.data.resize import imresize
from treeattn.validate import check_bool, check_float

__all__ = [
    "AWGN",
    "DEGRADATIONS",
    "JPEG",
    "BayerMosaic",
    "BicubicDown",
    "Degradation",
    "build_degradation",
]


@runtime_checkable
class Degradation(Protocol):
    """What datasets and the benchmark call: ``(C, H, W)`` image + generator -> degraded image."""

    def __call__(self, img: Tensor, generator: torch.Generator) -> Tensor: ...


def _one_of(value: float | None, value_range: tuple[float, float] | None, name: str) -> None:
    if (value is None) == (value_range is None):
        raise ValueError(f"give exactly one of {name}= and {name}_range=")
    if value is not None:
        check_float(name, value)
    if value_range is not None:
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError(f"{name}_range={value_range!r} must be a (low, high) pair")
        low = check_float(f"{name}_range[0]", value_range[0])
        if low > check_float(f"{name}_range[1]", value_range[1]):
            raise ValueError(f"{name}_range={value_range} must be (low, high) with low <= high")


def _check_image(img: Tensor) -> None:
    if not isinstance(img, Tensor) or not img.is_floating_point():
        kind = img.dtype if isinstance(img, Tensor) else type(img).__name__
        raise TypeError(f"degradations take a float image in [0, 1], got {kind}")
    if img.ndim != 3 or min(img.shape) == 0:
        raise ValueError(
            f"degradations take one non-empty (C, H, W) image, got shape {tuple(img.shape)}"
        )


class AWGN:
    """Additive white Gaussian noise, sigma on the 0-255 scale, added in float without clipping.

    Args:
        sigma: Fixed noise level (non-blind), e.g. 15, 25 or 50.
        sigma_range: ``(low, high)``: sigma drawn uniformly per call (blind training, e.g. (0, 50)).
        clip: Clamp the result to [0, 1] (off in the field's protocol).
    """

    def __init__(
        self,
        *,
        sigma: float | None = None,
        sigma_range: tuple[float, float] | None = None,
        clip: bool = False,
    ) -> None:
        _one_of(sigma, sigma_range, "sigma")
        low, high = sigma_range if sigma_range is not None else (sigma, sigma)
        if low < 0:
            raise ValueError(f"noise levels must be >= 0, got {sigma=}, {sigma_range=}")
        self.low, self.high, self.clip = float(low), float(high), check_bool("clip", clip)

    def __repr__(self) -> str:
        return f"AWGN(sigma_range=({self.low}, {self.high}), clip={self.clip})"

    def __call__(self, img: Tensor, generator: torch.Generator) -> Tensor:
        _check_image(img)
        u = torch.rand((), generator=generator, dtype=torch.float64).item()
        sigma = self.low + (self.high - self.low) * u
        noise = torch.randn(img.shape, generator=generator, dtype=img.dtype)
        out = img + noise.to(img.device) * (sigma / 255.0)
        return out.clamp(0.0, 1.0) if self.clip else out


class JPEG:
    """JPEG compression artefacts, OpenCV-compatible (4:2:0 chroma for colour, gray as gray).

    Gray inputs are encoded as one-channel JPEG; to follow the gray JPEG-CAR convention, read
    colour sources with ``gray_method="y"`` (MATLAB Y rounded to uint8), see
    :mod:`treeattn.data.io`.

    Args:
        quality: Fixed quality factor (10, 20, 30, 40 in the field's tests), a whole number
            (``50`` or ``50.0``; ``50.5`` is refused).
        quality_range: ``(low, high)``, an integer quality drawn uniformly per call (both ends
            included), e.g. (10, 40) for a blind model.
    """

    def __init__(
        self, *, quality: int | None = None, quality_range: tuple[int, int] | None = None
    ) -> None:
        _one_of(quality, quality_range, "quality")
        low, high = quality_range if quality_range is not None else (quality, quality)
        for name, value in (("quality", quality), ("quality_range", quality_range)):
            values = value if isinstance(value, (tuple, list)) else (value,)
            if value is not None and any(float(v) != int(v) for v in values):
                raise ValueError(
                    f"{name}={value!r} must hold whole numbers: JPEG qualities are integers "
                    "1-100 (a fraction would be rounded down silently)"
                )
        if not 1 <= low <= high <= 100:
            raise ValueError(
                f"JPEG qualities must lie in [1, 100], got {quality=}, {quality_range=}"
            )
        self.low, self.high = int(low), int(high)

    def __repr__(self) -> str:
        return f"JPEG(quality_range=({self.low}, {self.high}))"

    def __call__(self, img: Tensor, generator: torch.Generator) -> Tensor:
        _check_image(img)
        quality = int(torch.randint(self.low, self.high + 1, (), generator=generator))
        return jpeg_roundtrip(img, quality=quality)


class BicubicDown:
    """MATLAB ``imresize(img, 1/scale)`` (bicubic, antialiased), the SR low-resolution input.

    Args:
        scale: Integer down-scaling factor; height and width must be multiples of it (mod-crop
            the ground truth first).
        uint8_levels: Round to uint8 levels after each axis, as MATLAB does on uint8 images (this
            reproduces the published LR files); otherwise a float result.
    """

    def __init__(self, *, scale: int, uint8_levels: bool = True) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"{scale=} must be a positive integer")
        self.scale = int(scale)
        self.uint8_levels = check_bool("uint8_levels", uint8_levels)

    def __repr__(self) -> str:
        return f"BicubicDown(scale={self.scale}, uint8_levels={self.uint8_levels})"

    def __call__(self, img: Tensor, generator: torch.Generator) -> Tensor:
        _check_image(img)
        h, w = img.shape[-2:]
        if h % self.scale or w % self.scale:
            raise ValueError(
                f"image {h}x{w} is not a multiple of scale={self.scale}; mod-crop it first"
            )
        return imresize(img, scale=1.0 / self.scale, uint8_levels=self.uint8_levels)


class BayerMosaic:
    """Bayer-sample the uint8 ground truth, then Malvar-He-Cutler demosaic (3-channel output).

    Matches the field's demosaicking input: the RGB image is rounded to uint8 levels, sampled on
    the Bayer grid, demosaicked as MATLAB ``demosaic`` does and rounded to uint8 levels again.

    Args:
        pattern: Bayer layout, ``RGGB`` (the field's default), ``BGGR``, ``GRBG`` or ``GBRG``.
    """

    def __init__(self, *, pattern: str = "RGGB") -> None:
        if pattern not in BAYER_PATTERNS:
            raise ValueError(
                f"{pattern=} is not a Bayer pattern; choose one of {tuple(BAYER_PATTERNS)}"
            )
        self.pattern = pattern

    def __repr__(self) -> str:
        return f"BayerMosaic(pattern={self.pattern!r})"

    def __call__(self, img: Tensor, generator: torch.Generator) -> Tensor:
        _check_image(img)
        # integer levels keep every filter sum exact (the taps are multiples of 1/16), so ties
        # round half up exactly as MATLAB's conversion back to uint8 does
        levels = torch.floor(img.to(torch.float64).clamp(0.0, 1.0) * 255.0 + 0.5)
        out = demosaic_malvar(mosaic(levels, pattern=self.pattern), pattern=self.pattern)
        out = torch.floor(out.clamp(0.0, 255.0) + 0.5) / 255.0
        return out.to(img.dtype)


DEGRADATIONS: dict[str, type] = {
    "awgn": AWGN,
    "jpeg": JPEG,
    "bicubic": BicubicDown,
    "bayer": BayerMosaic,
}


def build_degradation(
    name: str, **params: float | int | bool | str | tuple[float, float]
) -> Degradation:
    """Build a degradation from its name in :data:`DEGRADATIONS` and its keyword parameters.

    Unknown names and parameters raise (the class constructors are keyword-only, without
    ``**kwargs``).

    Args:
        name: ``awgn``, ``jpeg``, ``bicubic`` or ``bayer``.
        **params: Constructor arguments of that class, e.g. ``sigma=25`` or
            ``quality_range=(10, 40)``.

    Returns:
        The degradation object.
    """
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name=}; choose one of {tuple(DEGRADATIONS)}")
    try:
        return DEGRADATIONS[name](**params)
    except TypeError as err:
        raise ValueError(f"bad parameters {params} for degradation {name!r}: {err}") from err
