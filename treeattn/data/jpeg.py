"""OpenCV-compatible JPEG encoding and decoding of float tensors.

Colour images are encoded with 4:2:0 chroma subsampling (the libjpeg default that OpenCV and
Pillow both use; their files are byte-identical at the same quality), gray images as one-channel
JPEG. Tensors are first clamped and rounded (half away from zero) to uint8 levels.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from einops import rearrange
from torch import Tensor

__all__ = ["decode_jpeg", "encode_jpeg", "jpeg_roundtrip", "to_uint8"]


def to_uint8(img: Tensor) -> np.ndarray:
    """``(C, H, W)`` tensor in [0, 1] -> ``(H, W, C)`` uint8 array (RGB order kept)."""
    levels = torch.floor(img.detach().to(torch.float64).cpu().clamp(0.0, 1.0) * 255.0 + 0.5)
    return np.ascontiguousarray(rearrange(levels, "c h w -> h w c").numpy().astype(np.uint8))


def encode_jpeg(img: Tensor, *, quality: int) -> bytes:
    """Encode a gray ``(1, H, W)`` or RGB ``(3, H, W)`` tensor in [0, 1] as JPEG bytes.

    Args:
        img: Image tensor.
        quality: JPEG quality factor, 1-100.

    Returns:
        The encoded file content (baseline JPEG, 4:2:0 chroma for colour).
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"{quality=} must be in [1, 100]")
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"JPEG needs a (1, H, W) or (3, H, W) image, got {tuple(img.shape)}")
    array = to_uint8(img)
    if array.shape[2] == 3:
        array = np.ascontiguousarray(array[:, :, ::-1])  # RGB -> BGR for OpenCV
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        int(quality),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]
    ok, encoded = cv2.imencode(".jpg", array, params)
    if not ok:
        raise ValueError(f"JPEG encoding of a {tuple(img.shape)} image failed")
    return encoded.tobytes()


def decode_jpeg(data: bytes, *, channels: int) -> Tensor:
    """Decode JPEG bytes to a float32 ``(channels, H, W)`` tensor in [0, 1] (RGB order)."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if array is None:
        raise ValueError("JPEG data could not be decoded")
    array = array[:, :, None] if channels == 1 else array[:, :, ::-1]  # gray, or BGR -> RGB
    img = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32) / np.float32(255.0))
    return rearrange(img, "h w c -> c h w")


def jpeg_roundtrip(img: Tensor, *, quality: int) -> Tensor:
    """Compress and decompress ``img``; the result has its shape, dtype and device."""
    out = decode_jpeg(encode_jpeg(img, quality=quality), channels=img.shape[0])
    return out.to(device=img.device, dtype=img.dtype)
