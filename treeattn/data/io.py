"""Image reading and writing between files and float tensors in [0, 1].

OpenCV (``IMREAD_UNCHANGED``) does the decoding so that 16-bit PNG/TIFF stay 16-bit; channels are
converted from OpenCV's BGR order to RGB on read and back on write.

Gray conversion of colour files (``channels=1``) follows one of two conventions:

* ``"luma"`` (default): BT.601 luma on the full range, ``0.299 R + 0.587 G + 0.114 B``, which is
  what OpenCV's ``IMREAD_GRAYSCALE``, Pillow's ``convert("L")`` and MATLAB's ``rgb2gray``
  compute; the gray denoising sets (Train400, Set12, BSD68 from DnCNN) are gray images of this kind.
* ``"y"``: the MATLAB ``rgb2ycbcr`` Y channel (``16 + 65.481 R + 128.553 G + 24.966 B``, range
  16-235) rounded to uint8 levels — the convention of gray JPEG artifact removal (see
  :func:`treeattn.metrics.rgb_to_y`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from treeattn.metrics import rgb_to_y

__all__ = [
    "GRAY_METHODS",
    "IMAGE_EXTENSIONS",
    "ImageFile",
    "image_size",
    "list_images",
    "read_image",
    "read_image_file",
    "read_image_with_depth",
    "to_gray",
    "write_image",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")
GRAY_METHODS: tuple[str, ...] = ("luma", "y")
_LUMA = (0.299, 0.587, 0.114)
_MAX_BY_DTYPE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_NP_BY_BITS = {8: np.uint8, 16: np.uint16}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY_ALPHA = 4  # IHDR colour type of gray + alpha (OpenCV decodes it as BGRA)


def _is_gray_alpha_png(data: np.ndarray) -> bool:
    return bytes(data[:8]) == _PNG_SIGNATURE and data.size > 25 and data[25] == _PNG_GRAY_ALPHA


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by name) directly inside ``folder``.

    Args:
        folder: Directory to scan (not recursive).

    Returns:
        Paths whose suffix is one of :data:`IMAGE_EXTENSIONS` (case-insensitive).

    Raises:
        FileNotFoundError: If ``folder`` does not exist or is not a directory.
        ValueError: If it holds no image files, or two files with the same stem (``x.png`` and
            ``x.jpg``: items and outputs are named by stem, so one would silently replace the
            other).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image folder {str(folder)!r} does not exist or is not a directory; "
            "pass the path of a folder of images"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(
            f"image folder {str(folder)!r} holds no images with suffix in {IMAGE_EXTENSIONS}; "
            "put images there or point to the right folder"
        )
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise ValueError(
                f"image folder {str(folder)!r} holds two images named {path.stem!r} "
                f"({seen[path.stem].name}, {path.name}); items are named by stem — keep one"
            )
        seen[path.stem] = path
    return files


def to_gray(img: Tensor, *, method: str = "luma") -> Tensor:
    """Convert an RGB tensor ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1] to one channel.

    Args:
        img: RGB image(s) in [0, 1].
        method: ``"luma"`` (BT.601 full-range luma, unrounded) or ``"y"`` (MATLAB Y channel,
            rounded to uint8 levels); see the module docstring.

    Returns:
        Tensor with a channel axis of size 1, same dtype.
    """
    if method not in GRAY_METHODS:
        raise ValueError(f"{method=} is not a gray conversion; choose one of {GRAY_METHODS}")
    if method == "y":
        return torch.round(rgb_to_y(img) * 255.0) / 255.0
    weights = img.new_tensor(_LUMA)
    return torch.einsum("...chw,c->...hw", img, weights).unsqueeze(-3)


def read_image(
    path: str | Path, *, channels: int | None = None, gray_method: str = "luma"
) -> Tensor:
    """Read an 8- or 16-bit image file into a float32 tensor ``(C, H, W)`` in [0, 1].

    Same as :func:`read_image_with_depth` without the bit depth.
    """
    return read_image_with_depth(path, channels=channels, gray_method=gray_method)[0]


def read_image_with_depth(
    path: str | Path, *, channels: int | None = None, gray_method: str = "luma"
) -> tuple[Tensor, int]:
    """Read an 8- or 16-bit image file into a float32 tensor ``(C, H, W)`` in [0, 1].

    Args:
        path: PNG, TIFF, BMP or JPEG file.
        channels: ``None`` keeps the file's channels (1 for gray, 3 for colour; alpha is dropped);
            ``1`` converts colour to gray with ``gray_method``; ``3`` repeats gray to RGB.
        gray_method: Gray convention used when ``channels=1`` meets a colour file.

    Returns:
        RGB (or gray) float32 tensor — 16-bit files are scaled by 1/65535, 8-bit by 1/255 — and
        the file's bit depth (8 or 16).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is empty, cannot be decoded or has an unsupported depth.
    """
    file = read_image_file(path, channels=channels, gray_method=gray_method)
    return file.image, file.bit_depth


@dataclass(frozen=True)
class ImageFile:
    """An image file as read: its colour (or gray) channels, its bit depth and its alpha.

    Attributes:
        image: Float32 ``(C, H, W)`` in [0, 1], C = 1 or 3 (after the requested conversion).
        bit_depth: 8 or 16.
        alpha: The file's alpha (transparency) channel ``(1, H, W)`` in [0, 1], or ``None``
            when it has none; it is never part of ``image``.
    """

    image: Tensor
    bit_depth: int
    alpha: Tensor | None = None


def read_image_file(
    path: str | Path, *, channels: int | None = None, gray_method: str = "luma"
) -> ImageFile:
    """Read an image file like :func:`read_image_with_depth`, keeping its alpha channel apart.

    RGBA and gray+alpha files give their colour/gray channels in ``image`` and the
    transparency in ``alpha``; other files have ``alpha=None``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is empty, cannot be decoded or has an unsupported depth.
    """
    path = Path(path)
    if channels not in (None, 1, 3):
        raise ValueError(f"{channels=} must be None, 1 or 3")
    if gray_method not in GRAY_METHODS:
        raise ValueError(f"{gray_method=} is not a gray conversion; choose one of {GRAY_METHODS}")
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist; check the path")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError(
            f"image file {str(path)!r} is empty (0 bytes); replace it with a valid image"
        )
    try:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. a header claiming more pixels than OpenCV allows
        raise ValueError(
            f"image file {str(path)!r} could not be decoded ({str(error).strip()}); its header "
            "may claim an impossible size — replace it with a valid image"
        ) from None
    if array is None:
        raise ValueError(
            f"image file {str(path)!r} could not be decoded (corrupted or not an image); "
            "replace it with a valid PNG/TIFF/BMP/JPEG file"
        )
    if array.dtype not in _MAX_BY_DTYPE:
        raise ValueError(
            f"image file {str(path)!r} has unsupported sample type {array.dtype}; "
            "only 8- and 16-bit images are supported"
        )
    scale = np.float32(_MAX_BY_DTYPE[array.dtype])
    if array.ndim == 2:
        array = array[:, :, None]
    alpha = None
    if array.shape[2] == 2:  # gray + alpha
        array, alpha = array[:, :, :1], array[:, :, 1:]
    elif array.shape[2] == 4:  # BGRA, or gray + alpha that OpenCV expanded to BGRA
        array, alpha = array[:, :, :3], array[:, :, 3:]
        if _is_gray_alpha_png(data):
            array = array[:, :, :1]
    if array.shape[2] == 3:
        array = array[:, :, ::-1]  # BGR -> RGB
    img = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32) / scale)
    img = rearrange(img, "h w c -> c h w")
    if alpha is not None:
        alpha = rearrange(
            torch.from_numpy(np.ascontiguousarray(alpha).astype(np.float32) / scale),
            "h w c -> c h w",
        )
    if channels == 1 and img.shape[0] == 3:
        img = to_gray(img, method=gray_method)
    elif channels == 3 and img.shape[0] == 1:
        img = img.expand(3, -1, -1).clone()
    return ImageFile(image=img, bit_depth=8 * array.dtype.itemsize, alpha=alpha)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file from its header, without decoding the pixels.

    Pillow reads the header; a file Pillow cannot parse (some TIFF layouts) is decoded in full
    with :func:`read_image_with_depth`, so every file the readers accept passes. Meant for
    checking whole folders cheaply before long work (a truncated file whose header is intact
    still passes).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not an image the readers can decode (the message names the file).
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist; check the path")
    try:
        with Image.open(path) as header:
            width, height = header.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        height, width = read_image_with_depth(path)[0].shape[-2:]
    return int(height), int(width)


def write_image(path: str | Path, img: Tensor, *, bit_depth: int = 8) -> None:
    """Write a ``(C, H, W)`` tensor in [0, 1] (C = 1 or 3) to an image file.

    Values are clamped to [0, 1] and rounded to the nearest level of ``bit_depth``; NaN values
    raise ``ValueError`` (no pixel level stands for them).

    Args:
        path: Output file; the suffix picks the format (16-bit needs PNG or TIFF).
        img: Gray or RGB image tensor.
        bit_depth: 8 or 16.

    Raises:
        ValueError: On a wrong shape, bit depth, format, or when encoding fails.
    """
    path = Path(path)
    if bit_depth not in _NP_BY_BITS:
        raise ValueError(f"{bit_depth=} must be 8 or 16")
    if not isinstance(img, Tensor):
        raise TypeError(f"img must be a torch.Tensor, got {type(img).__name__}")
    if img.ndim != 3 or img.shape[0] not in (1, 3) or min(img.shape) == 0:
        raise ValueError(
            f"image shape {tuple(img.shape)} must be a non-empty (C, H, W) with C = 1 or 3"
        )
    if not img.is_floating_point():
        raise TypeError(f"img has dtype {img.dtype}; write_image takes floats in [0, 1]")
    if torch.isnan(img).any():
        raise ValueError(
            f"image for {str(path)!r} holds {int(torch.isnan(img).sum())} NaN values; no pixel "
            "level stands for NaN — fix the values (e.g. torch.nan_to_num) before writing"
        )
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise ValueError(f"{str(path)!r}: suffix {suffix!r} is not one of {IMAGE_EXTENSIONS}")
    if bit_depth == 16 and suffix not in (".png", ".tif", ".tiff"):
        raise ValueError(f"{str(path)!r}: 16-bit images need a .png or .tif/.tiff suffix")
    levels = float(2**bit_depth - 1)
    array = torch.round(img.detach().float().cpu().clamp(0.0, 1.0) * levels)
    array = rearrange(array, "c h w -> h w c").numpy().astype(_NP_BY_BITS[bit_depth])
    if array.shape[2] == 3:
        array = array[:, :, ::-1]  # RGB -> BGR
    ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(array))
    if not ok:
        raise ValueError(f"encoding {str(path)!r} as {suffix} failed")
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded.tofile(path)
