"""A Swin-style window-attention layer, the in-project baseline for Hi-IR.

It is a one-level tree: full attention inside ``window × window`` windows (qkv ``C→3C``, a learned
relative-position table, output projection) and a plain MLP. ``shift=True`` offsets the window grid
by half a window, by padding rather than Swin's cyclic roll + mask; either way windows of
alternate layers straddle each other's borders, and no window wraps around the image.
"""

from __future__ import annotations

import torch

from treeattn.layers.hiir_layer import HiIRLayer
from treeattn.validate import check_int

__all__ = ["SwinLayer", "check_window_size"]


def check_window_size(window_size: object) -> int:
    """A window side in pixels: a positive int (a model config checks its ``window_size`` with
    this too, when it is created).

    Raises:
        TypeError: if ``window_size`` is not an int.
        ValueError: if it is below 1.
    """
    return check_int("window_size", window_size, minimum=1)


class SwinLayer(HiIRLayer):
    """Shifted-window attention layer built from the same parts as :class:`HiIRLayer`.

    Args:
        dim: Channels.
        num_heads: Attention heads.
        window_size: Window side in pixels.
        shift: Offset the windows by half a window (alternate it between layers).
        ffn_ratio: MLP hidden ratio.
        drop_path: Stochastic-depth probability.
        pos_bias: ``table`` (Swin v1, default), ``cpb`` (Swin v2) or ``none``.
        attn_type: ``dot`` or ``cosine`` (Swin v2).
        backend: Attention backend.
        data_format: ``BCHW`` or ``BHWC``.
        init: Init scheme, or ``None`` to leave the weights to the caller.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 8,
        *,
        shift: bool = False,
        ffn_ratio: float = 2.0,
        drop_path: float = 0.0,
        pos_bias: str = "table",
        attn_type: str = "dot",
        backend: str = "auto",
        data_format: str = "BCHW",
        init: str | None = "default",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            dim,
            num_heads,
            (check_window_size(window_size),),
            variant="v1",
            attn_type=attn_type,
            pos_bias=pos_bias,
            ffn_type="mlp",
            ffn_ratio=ffn_ratio,
            shift=shift,
            drop_path=drop_path,
            backend=backend,
            data_format=data_format,
            init=init,
            device=device,
            dtype=dtype,
        )
