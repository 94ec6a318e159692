"""The one path an image takes through a network: pad, run (whole, band-wise or tiled), crop.

:func:`treeattn.restore_image`, :func:`treeattn.restore_files` (so ``treeattn restore``) and the
engine's validation and final report all restore through a :class:`Runner`, so a model scores in
validation exactly what ``treeattn restore`` then writes for the same image and settings.

A batch goes:

1. with the self-ensemble, through steps 2–4 once per flip/rotation
   (:func:`~treeattn.inference.ensemble.self_ensemble`), each result turned back, all averaged;
2. padded once, bottom/right, to what ``model.meta`` needs
   (:meth:`~treeattn.models.meta.ModelMeta.padding_for`; reflect, else replicate);
3. through the network: the whole padded image, or — with a tile size — overlapping tiles of the
   padded image blended together (:func:`~treeattn.ops.tiling.tiled_apply`), each tile padded
   as in step 2; tiles at the border thus see the whole image's padding, and the tiled result
   equals the whole image wherever the overlap covers the receptive field;
4. cropped back to ``scale ×`` the input size.

Throughout, the model's Hi-IR layers run large maps band-wise
(:func:`~treeattn.ops.bands.band_wise`): in cache-sized tiles, with exactly the whole-map result.
That is this runner's choice, made here; ``model(x)`` itself always runs whole maps.

Nothing is checked here: the public entries check their arguments once —
:func:`treeattn.restore_image`, :func:`treeattn.restore_files`, the engine's settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from treeattn.inference.ensemble import self_ensemble as ensemble_apply
from treeattn.ops.bands import BandSettings, band_wise
from treeattn.ops.padding import crop_to, pad_to_multiple
from treeattn.ops.tiling import tiled_apply

__all__ = ["Runner", "padded_forward", "restore_with"]


def _pad(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` padded bottom/right to the size ``model.meta`` needs (reflect, else replicate)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = model.meta.padding_for(height, width)
    return pad_to_multiple(x, (height + pad_h, width + pad_w))[0]


def _pad_run_crop(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Steps 2–4 without tiles: pad ``x``, run ``model``, crop to ``scale ×`` its size."""
    height, width, scale = *x.shape[-2:], model.meta.scale
    return crop_to(model(_pad(model, x)), (height * scale, width * scale))


@dataclass(frozen=True, eq=False)
class Runner:
    """How a batch ``(B, C, H, W)`` goes through ``model``: call it on the batch.

    The batch must be on the model's device in a dtype it computes in; the result is
    ``(B, out_chans, scale·H, scale·W)``, computed without gradients. The model should be in eval
    mode (in training mode nothing runs band-wise, and dropout/drop-path act).

    Attributes:
        model: A model with a :class:`~treeattn.models.meta.ModelMeta` ``.meta`` (a treeattn
            model, or any module the engine trains).
        tile: Input tile side of overlapping tiles (bounded memory; equal to the whole-image
            result only where ``overlap`` covers the receptive field); ``None``: the whole image.
        overlap: Tile overlap in input pixels (unused without ``tile``).
        self_ensemble: Average the restorations of the 8 flips/rotations (8× the time).
        bands: When and how the layers run band-wise; ``None``: the settings in force when the
            runner is called (:func:`~treeattn.ops.bands.band_execution`).
    """

    model: nn.Module = field(repr=False)
    tile: int | None = None
    overlap: int = 32
    self_ensemble: bool = False
    bands: BandSettings | None = None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        run = partial(ensemble_apply, self._one) if self.self_ensemble else self._one
        with torch.no_grad(), band_wise(self.model, self.bands):
            return run(batch)

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        """Steps 2–4 for one orientation of the batch."""
        if self.tile is None:
            return _pad_run_crop(self.model, x)
        height, width, scale = *x.shape[-2:], self.model.meta.scale
        out = tiled_apply(
            partial(_pad_run_crop, self.model),
            _pad(self.model, x),
            tile=self.tile,
            overlap=self.overlap,
            scale=scale,
        )
        return crop_to(out, (height * scale, width * scale))


def padded_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pad ``x`` (bottom/right) to what ``model.meta`` needs, run the model, crop the result.

    The whole image through a default :class:`Runner`: no gradients, large layer maps band by band
    with exactly the whole-image result.
    """
    return Runner(model)(x)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode (no drop-path) and give the model back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _model_place(model: nn.Module, fallback: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters(), None)
    source = fallback if parameter is None else parameter
    return source.device, source.dtype


def restore_with(runner: Runner, img: torch.Tensor, *, bf16: bool = False) -> torch.Tensor:
    """``runner`` on one image ``(C, H, W)`` or a batch ``(B, C, H, W)``, wherever it lies.

    The input is moved to the model's device and parameter dtype, run in eval mode (the model's
    mode is restored afterwards), under bfloat16 autocast with ``bf16``, and returned on the
    input's device and dtype. Nothing is checked: :func:`treeattn.restore_image` checks first.

    Args:
        runner: How the batch goes through the model.
        img: Float image(s) the model takes.
        bf16: Run under bfloat16 autocast.

    Returns:
        The restoration, shaped like ``img`` (``scale ×`` its size, ``out_chans`` channels).
    """
    model = runner.model
    device, dtype = _model_place(model, img)
    batch = (img if img.ndim == 4 else img.unsqueeze(0)).to(device=device, dtype=dtype)
    precision = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if bf16
        else contextlib.nullcontext()
    )
    with _eval_mode(model), precision:
        out = runner(batch)
    out = out.to(device=img.device, dtype=img.dtype)
    return out if img.ndim == 4 else out.squeeze(0)
