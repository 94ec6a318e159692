"""The ``treeattn restore`` and ``treeattn export`` sub-commands (thin layers over the API).

``restore`` loads the model (:func:`~treeattn.models.registry.load_model`) and calls
:func:`~treeattn.inference.files.restore_files`; ``export`` calls
:func:`~treeattn.inference.export.export_model`. Exit status: 0 when every image was restored
or deliberately skipped, 1 when some image failed, 2 for bad input found before any work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from treeattn.allocator import keep_freed_memory
from treeattn.inference.export import EXPORT_FORMATS, export_files, export_model
from treeattn.inference.files import restore_files
from treeattn.models.registry import RUN_MODEL_FOLDER, load_model
from treeattn.threads import available_cores, resolve_threads
from treeattn.validate import check_device

__all__ = ["add_export_command", "add_restore_command"]

_DEFAULT_OVERLAP = 32  # --tile-overlap with --tile

_MODEL_HELP = (
    "a save_pretrained folder, a recipe run folder (its model/), or a shipped pretrained model "
    "name (`treeattn list --pretrained`)"
)


def _model_command(
    commands: argparse._SubParsersAction, name: str, *, help: str, description: str
) -> argparse.ArgumentParser:
    """A sub-command whose first argument is the MODEL to load."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("model", help=_MODEL_HELP)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def _device(text: str | None) -> torch.device | None:
    """``--device``: a device this machine has, holding values (``meta``, shapes only, is
    refused); checked before the model is loaded, one ``ValueError`` line otherwise."""
    return check_device("--device", text, allow_meta=False)


def _check_restore_settings(args: argparse.Namespace) -> None:
    """Refuse, before the model is loaded, settings that would be ignored or hurt silently."""
    cores = available_cores()
    if args.threads > cores:
        raise ValueError(
            f"--threads {args.threads} is more than the {cores} CPU core(s) this process may "
            f"use (more threads than cores only slows torch down); pass --threads {cores} or "
            "fewer, or 0 for all of them"
        )
    if args.tile_overlap is not None and args.tile is None:
        raise ValueError(
            f"--tile-overlap {args.tile_overlap} only applies to tiles; add --tile N (e.g. "
            "--tile 512) or drop --tile-overlap (whole images need no overlap)"
        )


def _restore(args: argparse.Namespace) -> int:
    _check_restore_settings(args)
    device = _device(args.device)
    torch.set_num_threads(resolve_threads(args.threads))
    keep_freed_memory()  # freed maps stay for the next tile and image (treeattn.allocator)
    model = load_model(args.model, device=device)
    summary = restore_files(
        model,
        args.inputs,
        args.output,
        recursive=args.recursive,
        suffix=args.suffix,
        overwrite=args.overwrite,
        tile=args.tile,
        overlap=_DEFAULT_OVERLAP if args.tile_overlap is None else args.tile_overlap,
        self_ensemble=args.self_ensemble,
        bf16=args.bf16,
        quiet=args.quiet,
    )
    if not args.quiet:
        print(
            f"restored {len(summary.written)} image(s) into {args.output}; "
            f"{len(summary.skipped)} existing skipped, {len(summary.failed)} failed"
        )
    return 0 if summary.ok else 1


def add_restore_command(commands: argparse._SubParsersAction) -> None:
    """Add ``restore MODEL INPUT [INPUT ...] --output DIR`` to the ``treeattn`` parser."""
    parser = _model_command(
        commands,
        "restore",
        help="restore image files with a trained model",
        description="Restore images: one PNG per input in --output, same stem and bit depth.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs")
    parser.add_argument(
        "-o", "--output", required=True, help="output folder (created; not an image file name)"
    )
    parser.add_argument("--recursive", action="store_true", help="include sub-folders of folders")
    parser.add_argument(
        "--tile", type=_positive, help="process overlapping tiles of this side (bounded memory)"
    )
    parser.add_argument(
        "--tile-overlap",
        type=_non_negative,
        help=f"tile overlap in pixels, with --tile ({_DEFAULT_OVERLAP})",
    )
    parser.add_argument(
        "--self-ensemble", action="store_true", help="average the 8 flips/rotations (8× time)"
    )
    parser.add_argument("--device", help="cpu (default), cuda, cuda:1, mps, ...")
    parser.add_argument(
        "--threads",
        type=_non_negative,
        default=0,
        help="CPU threads, at most the cores available (0: every available core)",
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--suffix", default="", help="append to output names, e.g. _restored")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-file lines")
    parser.set_defaults(run=_restore)


def _export_stem(source: str, model: torch.nn.Module) -> str:
    """The default file name stem: the model's folder (a run folder for its ``model/``), the
    shipped model's name, else the model's registered name."""
    path = Path(source).resolve() if Path(source).exists() else Path(source)
    if path.name == RUN_MODEL_FOLDER and path.parent.name:
        path = path.parent
    return path.name or model.meta.name


def _export(args: argparse.Namespace) -> int:
    model = load_model(args.model, device=_device(args.device))
    suffix, _ = EXPORT_FORMATS[args.format]
    height, width = args.size
    output = args.output or f"{_export_stem(args.model, model)}_{height}x{width}{suffix}"
    path = export_model(
        model, output, format=args.format, size=(height, width), overwrite=args.overwrite
    )
    files = export_files(path)
    written = " and ".join(map(str, files))
    together = " (keep the two files together: the first reads its weights from the second)"
    print(
        f"wrote {written} ({args.format}, input (B, {model.meta.in_chans}, {height}, {width}))"
        + (together if len(files) > 1 else "")
    )
    return 0


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """Add ``export MODEL --format onnx|pt2 --size H W`` to the ``treeattn`` parser."""
    parser = _model_command(
        commands,
        "export",
        help="export a model to ONNX or a torch.export program (fixed H×W)",
        description="Export a model for one input size (height and width fixed, batch dynamic).",
    )
    parser.add_argument("--format", required=True, choices=list(EXPORT_FORMATS))
    parser.add_argument(
        "--size", required=True, nargs=2, type=_positive, metavar=("H", "W"), help="input size"
    )
    parser.add_argument(
        "-o",
        "--output",
        help="output file (default: <model folder or name>_<H>x<W>.<format>, here)",
    )
    parser.add_argument("--device", help="device of the exported graph (cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(run=_export)
