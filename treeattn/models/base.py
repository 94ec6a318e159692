"""Shared behaviour of the Hi-IR models: config, metadata, input checks, padding, save/load."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from treeattn.layers.init import init_weights
from treeattn.layers.receptive import AxisOps, describe_axis
from treeattn.models import hub
from treeattn.models.architectures import register_architecture
from treeattn.models.configs import LayerConfig
from treeattn.models.meta import ModelMeta
from treeattn.models.provenance import TrainingRecord
from treeattn.ops.padding import crop_to, pad_to_multiple
from treeattn.validate import as_compute_dtype

__all__ = ["RestorationModel"]


class RestorationModel(nn.Module, ABC):
    """Base class: ``(B, in_chans, H, W)`` of any size → ``(B, out_chans, scale·H, scale·W)``.

    Subclasses name their architecture (``class M(RestorationModel, architecture="name")``, the name
    stored in checkpoints), build their modules from ``config`` in ``__init__``, call
    :meth:`_finish` at the end, and implement :meth:`forward_padded` on inputs already padded
    to ``meta.multiple_of``. To restore an image of any size call the model itself (or
    :func:`treeattn.restore_image`).

    Input dtype rule (:func:`treeattn.validate.as_compute_dtype`): floating-point input of any
    dtype is computed in the parameter dtype and returned in its own dtype; integer input (e.g. a
    uint8 image) raises ``TypeError`` — scale it to floats in [0, 1] first.

    Attributes:
        config: The frozen config the model was built from.
        meta: :class:`~treeattn.models.meta.ModelMeta` (scale, channels, size needs, dtypes).
        provenance: How the model was trained (:class:`~treeattn.models.provenance.
            TrainingRecord`), saved with it; ``None`` when not recorded.
    """

    config_class: ClassVar[type[LayerConfig]]
    config: LayerConfig
    meta: ModelMeta
    provenance: TrainingRecord | None

    def __init_subclass__(cls, *, architecture: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if architecture is not None:
            register_architecture(architecture, cls.config_class, cls)

    def __init__(self, config: LayerConfig, *, name: str) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got "
                f"{type(config).__name__}"
            )
        self.config = config
        self.name = name
        self.provenance = None

    def _finish(
        self,
        *,
        scale: int,
        multiple_of: int,
        minimum: int,
        supports_bf16: bool,
        supports_fp16: bool,
    ) -> None:
        """Apply the configured init scheme once to the whole model and set ``meta``.

        Args:
            scale: Output size / input size.
            multiple_of: The size :meth:`forward_padded` needs (the input is padded to it).
            minimum: Smallest input height/width the model accepts.
            supports_bf16: A bfloat16 forward is tested for this model class.
            supports_fp16: A float16 forward is tested for this model class.
        """
        init_weights(self, self.config.init, std=self.config.init_std)
        cfg = self.config
        self.meta = ModelMeta(
            name=self.name,
            task=cfg.task,
            scale=scale,
            in_chans=cfg.in_chans,
            out_chans=cfg.out_chans,
            multiple_of=multiple_of,
            minimum=minimum,
            supports_bf16=supports_bf16,
            supports_fp16=supports_fp16,
        )

    @abstractmethod
    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The network on an input whose size is already a multiple of ``meta.multiple_of``.

        Not a user entry point: call the model (which pads and crops) or
        :func:`treeattn.restore_image` instead. Implementations start with
        :meth:`check_padded`, so that other sizes raise instead of failing deep inside or
        returning a wrong size.
        """

    def check_padded(self, x: torch.Tensor) -> None:
        """Refuse an input to :meth:`forward_padded` that is not ``(B, in_chans, H, W)`` with H
        and W multiples of ``meta.multiple_of``, naming the entry points to use instead.

        Raises:
            ValueError: for another shape or size.
        """
        meta = self.meta
        multiple = meta.multiple_of
        # Batch left out: torch.export keeps it dynamic, and comparing it would specialise it.
        if x.dim() == 4 and x.shape[1] == meta.in_chans:
            height, width = x.shape[-2:]
            if height > 0 and width > 0 and height % multiple == 0 and width % multiple == 0:
                return
        raise ValueError(
            f"{meta.name}.forward_padded takes (B, {meta.in_chans}, H, W) with H and W positive "
            f"multiples of {multiple} (meta.multiple_of), got {tuple(x.shape)}; it is not an "
            "entry point — call the model itself, model(x), or treeattn.restore_image(model, "
            "img): both take any size (padding and cropping back)"
        )

    def forward_padded_ops(self, ops: AxisOps, axis: int) -> None:
        """Report :meth:`forward_padded`'s operations along ``axis`` (default: the submodules in the
        order they were registered — override when the data flow differs)."""
        for child in self.children():
            describe_axis(child, ops, axis)

    def receptive_ops(self, ops, axis: int) -> None:
        """Report :meth:`forward`'s operations along ``axis``: pad, the padded network, crop."""
        length = ops.pad_to(self.meta.multiple_of)
        self.forward_padded_ops(ops, axis)
        ops.crop(length * self.meta.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch: ``(B, in_chans, H, W)`` → ``(B, out_chans, scale·H, scale·W)``."""
        meta = self.meta
        x, dtype = as_compute_dtype(x, self.compute_dtype(), who=meta.name)
        if x.dim() != 4 or x.shape[1] != meta.in_chans:
            raise ValueError(
                f"{meta.name} expects (B, {meta.in_chans}, H, W) input, got {tuple(x.shape)}"
            )
        if min(x.shape) == 0:
            raise ValueError(
                f"{meta.name} got an empty batch of shape {tuple(x.shape)}; every axis needs "
                "at least one element"
            )
        padded, (height, width) = pad_to_multiple(x, meta.multiple_of)
        # Band-wise layers hand on channels-last maps, which convolutions keep: the result has the
        # default layout whatever happened inside (a copy of the few output channels at most).
        out = self.forward_padded(padded).contiguous()
        return crop_to(out, (height * meta.scale, width * meta.scale)).to(dtype)

    def compute_dtype(self) -> torch.dtype:
        """The dtype the model computes in: that of its first parameter."""
        return next(self.parameters()).dtype

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``model.safetensors`` and ``config.json`` (see :mod:`treeattn.models.hub`)."""
        hub.save_pretrained(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> RestorationModel:
        """Rebuild a saved model of this class (see :func:`treeattn.models.hub.from_pretrained`).

        Raises:
            TypeError: if the checkpoint holds another model class.
        """
        model = hub.from_pretrained(directory, device=device, dtype=dtype)
        if not isinstance(model, cls):
            raise TypeError(
                f"{directory} holds a {type(model).__name__}, not a {cls.__name__}; "
                "load it with treeattn.models.from_pretrained"
            )
        return model
