"""Export a model for a fixed input size: ONNX (``torch.onnx``) or a ``torch.export`` program.

Height and width are fixed at export: the padding to ``meta.multiple_of`` and the tree
partition compute their sizes as Python integers, so ``torch.export`` specialises the graph to
the example size (a dynamic height/width is refused with "specialized it to be a constant").
Export once per size you need, or use tiles of that size. The batch axis stays dynamic.

ONNX file layout: one self-contained ``.onnx`` file (graph and weights) whenever the weights fit
ONNX's 2 GB protobuf limit — every treeattn model does by far. Above it ``torch.onnx`` writes the
weights to a side file ``<name>.onnx.data`` that must stay next to the ``.onnx``;
:func:`export_files` lists what an export wrote.

ONNX needs the ``[export]`` extra (``onnx``, ``onnxscript``; ``onnxruntime`` to run the file).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from treeattn.inference.api import check_model_weights, model_meta
from treeattn.validate import check_bool, check_int, check_path

__all__ = ["EXPORT_FORMATS", "export_files", "export_model", "onnx_data_file"]


def onnx_data_file(path: str | os.PathLike) -> Path:
    """Where ``torch.onnx`` puts the weights of a model above 2 GB: ``<name>.onnx.data``."""
    path = Path(path)
    return path.with_name(f"{path.name}.data")


def export_files(path: str | os.PathLike) -> list[Path]:
    """The files of an export at ``path``: the file itself, plus the ONNX weights side file
    when one was written (only for weights above ONNX's 2 GB limit)."""
    path = Path(path)
    side = onnx_data_file(path)
    return [path, side] if path.suffix == ".onnx" and side.is_file() else [path]


def _example(model: nn.Module, size: tuple[int, int]) -> tuple[torch.Tensor, dict]:
    parameter = next(model.parameters())
    meta = model_meta(model)
    example = torch.rand(2, meta.in_chans, *size, device=parameter.device, dtype=parameter.dtype)
    return example, {"x": {0: torch.export.Dim("batch", min=1, max=1024)}}


def _export_pt2(model: nn.Module, path: Path, size: tuple[int, int]) -> None:
    example, dynamic = _example(model, size)
    program = torch.export.export(model, (example,), dynamic_shapes=dynamic)
    torch.export.save(program, str(path))


def _export_onnx(model: nn.Module, path: Path, size: tuple[int, int]) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"ONNX export needs onnx and onnxscript ({error}); pip install 'treeattn[export]'"
        ) from error
    example, dynamic = _example(model, size)
    # external_data=False: one self-contained file; torch.onnx still moves the weights to
    # <name>.onnx.data on its own when they exceed the 2 GB protobuf limit.
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_shapes=dynamic,
        external_data=False,
        verbose=False,
    )


#: Format name → (file suffix, exporter).
EXPORT_FORMATS: dict[str, tuple[str, Callable[[nn.Module, Path, tuple[int, int]], None]]] = {
    "onnx": (".onnx", _export_onnx),
    "pt2": (".pt2", _export_pt2),
}


def export_model(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    format: str,
    size: tuple[int, int],
    overwrite: bool = False,
) -> Path:
    """Write ``model`` for ``(B, in_chans, H, W)`` inputs of one size ``(H, W)``, any batch.

    Args:
        model: A treeattn model (exported in eval mode, as it is: device and dtype kept).
        path: Output file; it gets the format's suffix (``.onnx``, ``.pt2``) if it has none.
            ONNX: one self-contained file (see the module docstring for the 2 GB case and
            :func:`export_files`).
        format: ``onnx`` (run it with onnxruntime) or ``pt2`` (``torch.export.load``).
        size: Input ``(H, W)``; the output is ``(scale·H, scale·W)``.
        overwrite: Replace an existing file.

    Returns:
        The path written.

    Raises:
        TypeError: for a non-treeattn model, a ``path`` that is not a path, a non-integer size
            or a non-bool ``overwrite``.
        ValueError: for an unknown format, a non-positive size, a model with meta weights, an
            output that is a folder or has another suffix, or an existing file.
        ImportError: for ONNX without the ``[export]`` extra.
    """
    model_meta(model)
    check_model_weights(model)
    check_bool("overwrite", overwrite)
    if not isinstance(format, str) or format not in EXPORT_FORMATS:
        raise ValueError(f"{format=} is not an export format; use one of {list(EXPORT_FORMATS)}")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"size={size!r} must be a pair (H, W), got {type(size).__name__}")
    if len(size) != 2 or any(isinstance(v, int) and v < 1 for v in size):
        raise ValueError(f"{size=} must be two positive numbers (H, W)")
    size = (check_int("size[0]", size[0]), check_int("size[1]", size[1]))
    suffix, exporter = EXPORT_FORMATS[format]
    path = check_path("path", path)
    path = path if path.suffix or path.is_dir() else path.with_suffix(suffix)
    if path.suffix.lower() != suffix or path.is_dir():
        raise ValueError(
            f"output {str(path)!r} is not a {format} file path; give a file name ending in "
            f"{suffix} (or none: {suffix} is added)"
        )
    if path.exists() and not overwrite:
        raise ValueError(f"{str(path)!r} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "onnx":  # a stale weights side file of an earlier export would mislead
        onnx_data_file(path).unlink(missing_ok=True)
    was_training = model.training
    model.eval()
    try:
        exporter(model, path, (int(size[0]), int(size[1])))
    finally:
        model.train(was_training)
    return path
