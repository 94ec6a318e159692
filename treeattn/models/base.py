"""Shared behaviour of the Hi-IR models: config, metadata, input checks, padding, save/load.

The model classes read and write the file format (:mod:`treeattn.models.checkpoint`) themselves
and know nothing of the registry: :mod:`treeattn.models.registry` imports them (it finds the class
of a saved architecture), never the reverse.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import ClassVar, TypeVar

import torch
from torch import nn

from treeattn.layers.init import init_weights
from treeattn.layers.receptive import AxisOps, describe_axis
from treeattn.models.checkpoint import (
    WEIGHTS_NAME,
    check_digests,
    check_fit,
    load_weights,
    read_record,
    read_saved,
    write_checkpoint,
)
from treeattn.models.configs import LayerConfig
from treeattn.models.meta import ModelMeta
from treeattn.models.provenance import TrainingRecord
from treeattn.ops.padding import crop_to, pad_to_multiple
from treeattn.validate import as_compute_dtype, check_device, check_path

__all__ = ["RestorationModel"]

Model = TypeVar("Model", bound="RestorationModel")


class RestorationModel(nn.Module, ABC):
    """Base class: ``(B, in_chans, H, W)`` of any size → ``(B, out_chans, scale·H, scale·W)``.

    Subclasses name their architecture (``class M(RestorationModel, architecture="name")``, the name
    stored in checkpoints) and their ``config_class``, pass ``config``, ``name``, ``device`` and
    ``dtype`` to ``super().__init__`` (which checks them), build their modules from ``config``,
    call :meth:`_finish` at the end, and implement :meth:`forward_padded` on inputs already
    padded to ``meta.multiple_of``. The registry lists the model classes it builds
    (:data:`treeattn.models.registry.ARCHITECTURES`); defining a subclass registers nothing. To
    restore an image of any size call the model itself (or :func:`treeattn.restore_image`).

    Input dtype rule (:func:`treeattn.validate.as_compute_dtype`): floating-point input of any
    dtype is computed in the parameter dtype and returned in its own dtype; integer input (e.g. a
    uint8 image) raises ``TypeError`` — scale it to floats in [0, 1] first.

    Attributes:
        config: The frozen config the model was built from.
        meta: :class:`~treeattn.models.meta.ModelMeta` (scale, channels, size needs, dtypes).
        provenance: How the model was trained (:class:`~treeattn.models.provenance.
            TrainingRecord`), saved with it; ``None`` when not recorded.
    """

    architecture: ClassVar[str | None] = None
    config_class: ClassVar[type[LayerConfig]]
    config: LayerConfig
    meta: ModelMeta
    provenance: TrainingRecord | None

    def __init_subclass__(cls, *, architecture: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if architecture is not None:
            cls.architecture = architecture

    def __init__(
        self,
        config: LayerConfig,
        *,
        name: str,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Check the arguments every model class takes (its own modules are built after).

        Raises:
            TypeError: if ``config`` is not this class's config, ``name`` not a string,
                ``dtype`` not a floating-point ``torch.dtype``, or ``device`` not a device name.
            ValueError: if ``device`` is not available here (e.g. ``"cuda"`` on a CPU-only torch).
        """
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got "
                f"{type(config).__name__}"
            )
        if not isinstance(name, str):
            raise TypeError(f"name={name!r} must be a str, got {type(name).__name__}")
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(
                f"dtype={dtype!r} must be a floating-point torch.dtype such as torch.float32 or "
                "torch.bfloat16 (or None)"
            )
        check_device("device", device)
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
        """Write ``model.safetensors`` and ``config.json`` (see :mod:`treeattn.models.checkpoint`).

        Raises:
            TypeError: if ``directory`` is not a path, or the class names no architecture.
            FileExistsError: if ``directory`` holds a ``config.json`` that is not a treeattn
                config, or ``directory`` is a file.
        """
        if type(self).architecture is None:
            raise TypeError(
                f"{type(self).__name__} names no architecture: declare it as "
                f'class {type(self).__name__}(RestorationModel, architecture="NAME")'
            )
        write_checkpoint(
            directory,
            weights=self.state_dict(),
            config=self.config,
            name=self.meta.name,
            architecture=type(self).architecture,
            training=self.provenance,
        )

    @classmethod
    def from_pretrained(
        cls: type[Model],
        directory: str | os.PathLike,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Model:
        """Rebuild a model of this class saved by :meth:`save_pretrained`.

        A model class knows no names (the registry imports the classes, never the reverse):
        :func:`treeattn.load_model` loads a shipped model by name, a recipe run folder or a saved
        folder of any architecture.

        Args:
            directory: The checkpoint folder (not a shipped model's name).
            device: Where to put the parameters (default: CPU).
            dtype: Parameter dtype (default: float32; saved weights are cast to it).

        Returns:
            The model, in eval mode, with the saved weights, ``meta.name`` of the saved model and
            ``provenance``, the saved :class:`~treeattn.models.provenance.TrainingRecord`
            (``None`` for models saved without one).

        Raises:
            TypeError: if the folder holds another architecture, ``directory`` is not a path,
                or this class is :class:`RestorationModel` itself.
            ValueError: if ``device`` is not available here, or is ``meta`` (which holds no
                weights; build with ``create_model(..., device="meta")`` for shapes).
            FileNotFoundError: if the folder or one of its two files is missing (for a name, the
                message names :func:`treeattn.load_model`).
            CheckpointError: if the config is not a treeattn config, of a newer format, or
                invalid, if the weights file is truncated or corrupt, if the weights do not fit
                the config (missing, unexpected or shape-mismatched keys, all listed), or if
                either file no longer matches the digest recorded when it was saved.
        """
        if cls.architecture is None:
            raise TypeError(
                f"{cls.__name__}.from_pretrained needs a model class such as "
                "HiIRUNet.from_pretrained; treeattn.models.from_pretrained loads any architecture"
            )
        path = check_path("directory", directory)
        if not path.is_dir():
            raise FileNotFoundError(
                f"checkpoint directory {path} does not exist; {cls.__name__}.from_pretrained "
                "takes a save_pretrained folder — a shipped model's name or a recipe run folder "
                f"loads with treeattn.load_model({str(directory)!r})"
            )
        check_device("device", device, allow_meta=False)  # meta would drop the weights silently
        record = read_record(path)
        if record["architecture"] != cls.architecture:
            raise TypeError(
                f"{directory} holds a {record['architecture']!r} model, not a {cls.__name__} "
                f"({cls.architecture!r}); load it with treeattn.models.from_pretrained"
            )
        saved = read_saved(path, record, cls.config_class)
        model = cls(saved.config, name=saved.name, device=device, dtype=dtype)
        check_fit(model, saved.weights, path / WEIGHTS_NAME)
        check_digests(record, saved.weights_sha256, path)
        load_weights(model, saved.weights)
        model.provenance = saved.training
        return model.eval()
