"""Restore image tensors of any size with a treeattn model: whole, tiled, self-ensembled.

:func:`restore_image` is the entry point for tensors: it checks its arguments once, then hands the
image to a :class:`~treeattn.inference.runner.Runner` — the one path an image takes through the
network, which :func:`treeattn.inference.files.restore_files` (``treeattn restore``) and the
engine's validation use too. The checks live here, for every entry to call once.

Example:
    >>> import torch
    >>> from treeattn import create_model, restore_image
    >>> model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1).eval()
    >>> restore_image(model, torch.rand(1, 45, 61), self_ensemble=True).shape
    torch.Size([1, 45, 61])
"""

from __future__ import annotations

import torch
from torch import nn

from treeattn.inference.runner import Runner, restore_with
from treeattn.models.meta import ModelMeta
from treeattn.ops.tiling import check_tile_overlap
from treeattn.validate import check_bool

__all__ = [
    "check_image",
    "check_model_input",
    "check_model_weights",
    "check_precision",
    "check_run",
    "check_tiling",
    "input_views",
    "model_meta",
    "restore_image",
    "select_runner",
]


def model_meta(model: nn.Module) -> ModelMeta:
    """``model.meta``, or a ``TypeError`` saying how to get a treeattn model."""
    meta = getattr(model, "meta", None)
    if not isinstance(meta, ModelMeta):
        raise TypeError(
            f"restore_image needs a treeattn model (with a ModelMeta .meta), got "
            f"{type(model).__name__}; build one with treeattn.create_model or load one with "
            "treeattn.from_pretrained"
        )
    return meta


def input_views(model: nn.Module, meta: ModelMeta) -> int:
    """Views stacked in the input: the training record's, else ``in_chans / out_chans``."""
    record = getattr(model, "provenance", None)
    if record is not None:
        return record.views
    return meta.in_chans // meta.out_chans if meta.in_chans % meta.out_chans == 0 else 1


def check_model_input(model: nn.Module, channels: int) -> None:
    """Refuse an input of ``channels`` channels that ``model`` cannot take.

    Raises:
        TypeError: if ``model`` is not a treeattn model.
        ValueError: if the channels differ from ``meta.in_chans``; for a multi-view (dual-pixel)
            model the message says how to stack the views.
    """
    meta = model_meta(model)
    if channels == meta.in_chans:
        return
    views = input_views(model, meta)
    how = (
        f" ({views} views of {meta.out_chans} channels stacked along the channel axis, e.g. "
        "torch.cat([left, right], dim=-3) for dual-pixel)"
        if views > 1
        else ""
    )
    raise ValueError(
        f"model {meta.name!r} takes {meta.in_chans}-channel images{how}, got {channels} channels; "
        f"convert the input (gray ↔ RGB) or use a {channels}-channel model"
    )


def check_model_weights(model: nn.Module) -> None:
    """Refuse a model whose weights are on the ``meta`` device (shapes only, no values).

    Such a model (``create_model(..., device="meta")``, ``--device meta``) can be counted
    (``treeattn info``) but not run: every image would fail.

    Raises:
        ValueError: naming the fix (load or build the model on a real device).
    """
    if any(p.is_meta for p in model.parameters()):
        raise ValueError(
            f"model {model_meta(model).name!r} has its weights on the meta device (shapes only, "
            "no values) and cannot restore or export anything; load or build it on a real "
            "device, e.g. load_model(..., device='cpu') or --device cpu"
        )


def check_precision(model: nn.Module, *, bf16: bool) -> None:
    """Refuse ``bf16`` for a model whose ``meta`` does not claim bfloat16 support."""
    meta = model_meta(model)
    if bf16 and not meta.supports_bf16:
        raise ValueError(f"model {meta.name!r} does not claim bfloat16 support; drop bf16")


def check_tiling(tile: int | None, overlap: int, *, minimum: int = 1) -> None:
    """Check tiling settings before any work: ``None``, or the one tile rule and ``minimum``.

    Args:
        tile: Tile side, or ``None`` for whole images.
        overlap: Tile overlap in pixels (only checked with a ``tile``).
        minimum: Smallest useful tile: the model's ``meta.multiple_of`` (it pads every tile
            to a multiple of it, so a smaller tile costs time and quality and gains nothing).

    Raises:
        TypeError: if ``tile`` or ``overlap`` is not an int.
        ValueError: if ``tile`` is below ``minimum`` or ``overlap`` is not in ``[0, tile)``
            (:func:`~treeattn.ops.tiling.check_tile_overlap`).
    """
    if tile is None:
        return
    check_tile_overlap(tile, overlap)
    if tile < minimum:
        raise ValueError(
            f"{tile=} is smaller than {minimum}, the multiple the model pads every tile to; "
            f"use a tile of at least {minimum} pixels (e.g. 256), or None for whole images"
        )


def select_runner(model: nn.Module, *, tile: int | None, overlap: int) -> Runner:
    """How a ``(B, C, H, W)`` batch goes through ``model``: a :class:`Runner` without ensemble.

    Args:
        model: A treeattn model (padded to its ``meta`` needs and cropped back).
        tile: Input tile side for overlapping tiles of the padded image (bounded memory,
            approximate where the overlap is smaller than the receptive field); ``None`` runs the
            whole image exactly, large layer maps band by band (:mod:`treeattn.ops.bands`).
        overlap: Tile overlap in input pixels.

    Returns:
        A function from an input batch to the restored batch.
    """
    return Runner(model, tile=tile, overlap=overlap)


def check_image(model: nn.Module, img: object) -> None:
    """Refuse an image ``model`` cannot restore: not a float tensor ``(C, H, W)`` or
    ``(B, C, H, W)`` with values and ``model.meta.in_chans`` channels.

    Raises:
        TypeError: if ``img`` is not a float tensor.
        ValueError: for a wrong shape or channel count, or a meta tensor.
    """
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"img must be a torch.Tensor (C, H, W) or (B, C, H, W), got {type(img)}")
    if not img.is_floating_point():
        raise TypeError(
            f"img has dtype {img.dtype}; pass floats in [0, 1], e.g. img.float() / 255 for uint8"
        )
    if img.ndim not in (3, 4) or min(img.shape, default=0) < 1:
        raise ValueError(
            f"img must be (C, H, W) or (B, C, H, W) with no empty axis, got shape "
            f"{tuple(img.shape)}"
        )
    if img.is_meta:
        raise ValueError("img is a meta tensor (shape only, no data); pass an image with values")
    check_model_input(model, img.shape[-3])


def check_run(
    model: nn.Module, *, tile: int | None, overlap: int, self_ensemble: bool, bf16: bool
) -> None:
    """Check a model and the settings of a restoration, once, before any image.

    Raises:
        TypeError: if ``model`` is not a treeattn model, or a flag is not a bool (``"no"`` would
            read as true), or a tiling setting is not an int.
        ValueError: for a model with meta weights, bad tiling settings (a tile below
            ``model.meta.multiple_of``), or ``bf16`` on a model that does not claim it.
    """
    meta = model_meta(model)  # a TypeError for anything but a treeattn model comes first
    check_model_weights(model)
    check_bool("self_ensemble", self_ensemble)
    check_bool("bf16", bf16)
    check_tiling(tile, overlap, minimum=meta.multiple_of)
    check_precision(model, bf16=bf16)


def restore_image(
    model: nn.Module,
    img: torch.Tensor,
    *,
    tile: int | None = None,
    overlap: int = 32,
    self_ensemble: bool = False,
    bf16: bool = False,
) -> torch.Tensor:
    """Restore one image ``(C, H, W)`` or a batch ``(B, C, H, W)`` of any size.

    The input is moved to the model's device and parameter dtype, run without gradients in eval
    mode (the model's mode is restored afterwards), and returned on the input's device and dtype.
    It goes the one way images go through a network (:class:`~treeattn.inference.runner.Runner`):
    padded once to the model's needs, whole (large layer maps band by band, exactly) or in tiles,
    cropped back — the engine's validation scores exactly this output.

    Args:
        model: A treeattn model, e.g. from :func:`treeattn.from_pretrained`.
        img: Float image(s) in [0, 1] with ``model.meta.in_chans`` channels.
        tile: Process overlapping ``tile × tile`` input tiles and blend them (bounded memory;
            equal to the whole-image result only where ``overlap`` covers the receptive field);
            ``None``: the whole image at once.
        overlap: Tile overlap in input pixels (``0 ≤ overlap < tile``).
        self_ensemble: Average the restorations of the 8 flips/rotations (8× the time).
        bf16: Run under bfloat16 autocast (models with ``meta.supports_bf16``).

    Returns:
        ``(out_chans, scale·H, scale·W)`` or ``(B, out_chans, scale·H, scale·W)``; values are
        not clamped.

    Raises:
        TypeError: if ``model`` is not a treeattn model, ``img`` is not a float tensor, or
            ``self_ensemble``/``bf16`` is not a bool (``"no"`` would read as true).
        ValueError: for a wrong shape or channel count, a meta tensor or a model with meta
            weights, bad tiling settings (a tile below ``model.meta.multiple_of``), or ``bf16``
            on a model that does not claim it.
    """
    check_run(model, tile=tile, overlap=overlap, self_ensemble=self_ensemble, bf16=bf16)
    check_image(model, img)
    runner = Runner(model, tile=tile, overlap=overlap, self_ensemble=self_ensemble)
    return restore_with(runner, img, bf16=bf16)
