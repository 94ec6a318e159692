"""A model call for inference on large images, band by band, with exactly the whole-image result.

Every Hi-IR layer of a model can run its attention on rows of top-level blocks of its own (padded,
possibly shifted) window grid and its FFN in tiles with a one-pixel halo for the depthwise 3×3
conv (:mod:`treeattn.ops.bands`). That is done layer by layer, inside the layers, so the reach of
the other convolutions (shallow conv, stage ends, the U-shape's down/up-sampling, the upsampler)
never has to be covered by a halo: they run on whole maps, and only the layers' large
intermediates (q/k/v, attention maps, FFN hidden channels) are cut into cache-sized tiles.

It is an explicit choice: ``model(x)`` runs whole maps, always. :func:`banded_forward` runs
``model(x)`` inside :func:`~treeattn.ops.bands.band_wise`, which switches the layers' band-wise
path on for maps of at least :data:`~treeattn.ops.bands.BAND_MIN_PIXELS` pixels (or the given
threshold). The restore runner (:mod:`treeattn.inference.runner`: :func:`treeattn.restore_image`,
``treeattn restore``, the engine's validation) makes the same choice.
"""

from __future__ import annotations

import torch
from torch import nn

from treeattn.ops.bands import band_execution, band_wise

__all__ = ["banded_forward"]


def banded_forward(
    model: nn.Module,
    x: torch.Tensor,
    *,
    min_pixels: int | None = None,
    tile_pixels: int | None = None,
) -> torch.Tensor:
    """``model(x)`` for inference: no autograd, large layer maps band by band.

    The result equals the whole-image ``model(x)`` (to float rounding, ≤ 1e-5 in fp32).

    Args:
        model: A model in eval mode (e.g. a :class:`~treeattn.models.RestorationModel`, or one
            layer).
        x: Its input batch.
        min_pixels: Smallest layer map (``H·W``) run band-wise; ``0`` bands every map larger than
            a tile; ``None`` keeps the settings in force
            (:data:`~treeattn.ops.bands.BAND_MIN_PIXELS` unless a
            :func:`~treeattn.ops.bands.band_execution` block changed them).
        tile_pixels: Target pixels per tile; ``None`` keeps the settings in force
            (:data:`~treeattn.ops.bands.BAND_TILE_PIXELS` by default).

    Returns:
        ``model(x)``, computed without gradients.

    Raises:
        TypeError: If ``model`` is not a module, or ``min_pixels``/``tile_pixels`` is not an int.
        ValueError: If ``model`` is in training mode (call ``model.eval()`` first), or
            ``min_pixels < 0`` or ``tile_pixels < 1``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"banded_forward needs a torch.nn.Module, got {type(model).__name__}; e.g. "
            "treeattn.create_model(...).eval()"
        )
    if model.training:
        raise ValueError(
            f"banded_forward needs {type(model).__name__} in eval mode (dropout and drop-path "
            "differ in training); call model.eval() first"
        )
    with (
        torch.no_grad(),
        band_execution(min_pixels=min_pixels, tile_pixels=tile_pixels) as settings,
        band_wise(model, settings),
    ):
        return model(x)
