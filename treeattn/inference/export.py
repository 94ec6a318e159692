"""Export a model for a fixed input size: ONNX (``torch.onnx``) or a ``torch.export`` program.

Height and width are fixed at export: the padding to ``meta.multiple_of`` and the tree
partition compute their sizes as Python integers, so ``torch.export`` specialises the graph to
the example size (a dynamic height/width is refused with "specialized it to be a constant").
Export once per size you need, or use tiles of that size. The batch axis stays dynamic.

ONNX needs the ``[export]`` extra (``onnx``, ``onnxscript``; ``onnxruntime`` to run the file).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from treeattn.inference.api import model_meta
from treeattn.validate import check_int

__all__ = ["EXPORT_FORMATS", "export_model"]


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
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_shapes=dynamic,
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
        format: ``onnx`` (run it with onnxruntime) or ``pt2`` (``torch.export.load``).
        size: Input ``(H, W)``; the output is ``(scale·H, scale·W)``.
        overwrite: Replace an existing file.

    Returns:
        The path written.

    Raises:
        ValueError: for an unknown format, a non-positive size, an output that is a folder or
            has another suffix, or an existing file.
        ImportError: for ONNX without the ``[export]`` extra.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"{format=} is not an export format; use one of {list(EXPORT_FORMATS)}")
    if len(size) != 2 or any(isinstance(v, int) and v < 1 for v in size):
        raise ValueError(f"{size=} must be two positive numbers (H, W)")
    size = (check_int("size[0]", size[0]), check_int("size[1]", size[1]))
    suffix, exporter = EXPORT_FORMATS[format]
    path = Path(path)
    path = path if path.suffix or path.is_dir() else path.with_suffix(suffix)
    if path.suffix.lower() != suffix or path.is_dir():
        raise ValueError(
            f"output {str(path)!r} is not a {format} file path; give a file name ending in "
            f"{suffix} (or none: {suffix} is added)"
        )
    if path.exists() and not overwrite:
        raise ValueError(f"{str(path)!r} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        exporter(model, path, (int(size[0]), int(size[1])))
    finally:
        model.train(was_training)
    return path
