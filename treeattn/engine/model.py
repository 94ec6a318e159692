"""The run's model: the registry model a task's run trains (:func:`model_for_task`, a use of
:func:`treeattn.models.create_model`), the checks that the run's settings suit it, and the record
of how it was trained (saved with the final model)."""

from __future__ import annotations

from typing import Any

from torch import nn

from treeattn.deprecation import renamed
from treeattn.engine.settings import TrainConfig
from treeattn.engine.task import TaskSpec
from treeattn.models.provenance import InitRecord, TrainingRecord

__all__ = [
    "build_model",  # noqa: F822 (a deprecated name, see __getattr__)
    "check_model_fits",
    "check_scale",
    "model_for_task",
    "training_record",
]


def check_scale(spec: TaskSpec, scale: Any, *, model: str) -> None:
    """Refuse a model whose scale the task does not train (an SR model for denoising, ...).

    Raises:
        ValueError: Naming the model, its scale, and registry models that suit the task.
    """
    if scale in spec.scales:
        return
    from treeattn.models import list_models, model_config

    configs = {n: model_config(n) for n in list_models()}
    suitable = sorted(
        (n for n, c in configs.items() if getattr(c, "scale", 1) in spec.scales),
        key=lambda n: (getattr(configs[n], "task", None) != spec.name, len(n), n),
    )
    scales = " or ".join(map(str, spec.scales))
    raise ValueError(
        f"recipes/{spec.name}.py trains models of scale {scales}, but --model {model} has "
        f"scale {scale!r}; use a model such as {suitable[:3]}"
    )


def model_for_task(spec: TaskSpec, cfg: TrainConfig) -> nn.Module:
    """The registry model ``--model`` names, created for the task's run with
    :func:`treeattn.models.create_model`: the run's channels and the user's overrides applied.

    Overrides, later winning: ``task`` = the recipe's task (so a JPEG run's model does not call
    itself ``restore``), ``in_chans``/``out_chans`` from ``--channels`` (twice the input
    channels with ``--dual-pixel``), the task's ``dual_pixel_overrides`` with ``--dual-pixel``,
    then ``--model-overrides``.

    Raises:
        ValueError: For an unknown model, a model of another scale than the task's, or settings
            the model cannot be built with (the message names them).
    """
    from treeattn.models import create_model, model_config

    config = model_config(cfg.model)
    check_scale(
        spec, cfg.model_overrides.get("scale", getattr(config, "scale", 1)), model=cfg.model
    )
    views = 2 if cfg.dual_pixel else 1
    overrides = {"task": spec.name, "in_chans": cfg.channels * views, "out_chans": cfg.channels}
    if cfg.dual_pixel:
        overrides.update(spec.dual_pixel_overrides)
    overrides.update(cfg.model_overrides)
    try:
        return create_model(cfg.model, **overrides)
    except (TypeError, ValueError, ArithmeticError) as err:
        raise ValueError(
            f"--model {cfg.model} cannot be built with {overrides} (from --channels, "
            f"--dual-pixel and --model-overrides): {err}; fix --model-overrides"
        ) from err


def check_model_fits(
    meta: Any, *, patch_size: int, mixed_precision: str, in_chans: int, out_chans: int
) -> None:
    """Refuse a model of other channels than the data, a patch it must pad, or a precision.

    Args:
        meta: The model's :class:`treeattn.models.meta.ModelMeta`.
        patch_size: Training input patch side.
        mixed_precision: ``no``, ``bf16`` or ``fp16``.
        in_chans: Channels of the network input (``--channels``, twice with ``--dual-pixel``).
        out_chans: Channels of the ground truth.

    Raises:
        ValueError: If the channels differ, ``patch_size`` is below ``meta.minimum`` or not a
            multiple of ``meta.multiple_of`` (the message suggests the nearest valid sizes), or
            the model does not declare support for the requested half precision.
    """
    if (meta.in_chans, meta.out_chans) != (in_chans, out_chans):
        raise ValueError(
            f"model {meta.name!r} maps {meta.in_chans} to {meta.out_chans} channels but the data "
            f"has {in_chans} input and {out_chans} output channels; match --channels (and "
            "--dual-pixel) or drop in_chans/out_chans from --model-overrides"
        )
    supported = {"no": True, "bf16": meta.supports_bf16, "fp16": meta.supports_fp16}
    if not supported[mixed_precision]:
        raise ValueError(
            f"model {meta.name!r} is not tested with --mixed-precision {mixed_precision} "
            f"(meta.supports_{mixed_precision}=False); use --mixed-precision no or bf16"
        )
    if patch_size >= meta.minimum and patch_size % meta.multiple_of == 0:
        return
    low = max(meta.minimum, patch_size - patch_size % meta.multiple_of)
    low += (-low) % meta.multiple_of
    high = low if low > patch_size else low + meta.multiple_of
    raise ValueError(
        f"--patch-size {patch_size} does not suit model {meta.name!r}, which needs multiples of "
        f"{meta.multiple_of} (at least {meta.minimum}); use --patch-size "
        f"{sorted({low, high} - {0})} or a model with a smaller tree"
    )


def _training_data(spec: TaskSpec, cfg: TrainConfig) -> str:
    """The training data in words: the user's folders, or the embedded images used."""
    if cfg.train_dir:
        return f"clean images in {cfg.train_dir}"
    if cfg.train_lq:
        return f"pairs: degraded {' + '.join(cfg.train_lq)}, ground truth {cfg.train_gt}"
    made = "" if spec.data == "degraded" else f", as synthetic {spec.synthetic} pairs"
    colour = "colour" if cfg.channels == 3 else "gray"
    return f"treeattn's embedded {colour} '{spec.embedded}' training images{made}"


def training_record(
    spec: TaskSpec,
    cfg: TrainConfig,
    meta: Any,
    *,
    steps: int,
    init_from: InitRecord | None = None,
) -> TrainingRecord:
    """How the run's model was trained, for ``model.provenance`` (see ``treeattn info DIR``).

    Args:
        spec: The task.
        cfg: The run's settings (level, channels, dual-pixel, data folders).
        meta: The model's :class:`treeattn.models.meta.ModelMeta`.
        steps: Optimizer steps done.
        init_from: The weights the run started from (``--init-from``), with their own record.
    """
    has_level = spec.level is not None and bool(cfg.level)
    return TrainingRecord(
        task=spec.name,
        in_chans=meta.in_chans,
        out_chans=meta.out_chans,
        degradation=spec.degradation,
        level_name=spec.level.flag if has_level else None,
        level=tuple(cfg.level) if has_level else (),
        params=spec.degradation_params,
        scale=meta.scale,
        views=2 if cfg.dual_pixel else 1,
        gray_method=spec.gray_method,
        data=_training_data(spec, cfg),
        steps=steps,
        init_from=init_from,
    )


def __getattr__(name: str) -> Any:
    return renamed(__name__, name, {"build_model": model_for_task})
