"""Restore image files safely: find the inputs, plan the outputs, restore each, report.

Nothing is lost and nothing is mixed up: every rule is checked before the first image is
restored — an output never replaces an input, two inputs never share an output, an output
folder that is an input folder needs a suffix, and the model must take images a file can hold.
Existing outputs are skipped unless ``overwrite``; non-image files are skipped with a warning;
an image that cannot be read or restored is reported by name and the others still run. Outputs
are PNG files with the input's stem (plus ``suffix``) and bit depth, written atomically.

Needs the ``[data]`` extra (OpenCV for decoding, tqdm for the progress bar).
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from treeattn.inference.api import (
    check_precision,
    check_tiling,
    input_views,
    model_meta,
    restore_image,
)
from treeattn.validate import check_bool

__all__ = ["FileJob", "RestoreSummary", "find_inputs", "plan_outputs", "restore_files"]

_GLOB_CHARS = frozenset("*?[")
_FILE_CHANNELS = (1, 3)


@dataclass(frozen=True)
class FileJob:
    """One image to restore and where its result goes."""

    source: Path
    output: Path


@dataclass
class RestoreSummary:
    """What :func:`restore_files` did.

    Attributes:
        written: Outputs written.
        skipped: Existing outputs left alone (no ``overwrite``).
        ignored: Non-image files that were skipped.
        failed: ``(input, reason)`` of images that could not be read or restored.
    """

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every image found was restored or deliberately skipped."""
        return not self.failed


def _say(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def _is_image(path: Path) -> bool:
    from treeattn.data.io import IMAGE_EXTENSIONS

    return path.suffix.lower() in IMAGE_EXTENSIONS


def _folder_files(folder: Path, *, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in found
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def find_inputs(
    inputs: Sequence[str | os.PathLike], *, recursive: bool = False
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """The images named by files, folders and glob patterns, and the non-image files met.

    Args:
        inputs: Image files, folders (their images; hidden files are left out) or glob patterns.
        recursive: Also take the images in sub-folders of folders (kept as sub-folders of the
            output); ``**`` in patterns matches sub-folders.

    Returns:
        ``([(image, output sub-folder relative to the output folder), ...], [non-image, ...])``,
        each image once, in the order given (folders sorted by name).

    Raises:
        FileNotFoundError: for a path that does not exist or a pattern that matches nothing.
        ValueError: if no image is found at all.
    """
    images: dict[Path, tuple[Path, Path]] = {}
    ignored: list[Path] = []

    def take(path: Path, relative: Path) -> None:
        if not _is_image(path):
            ignored.append(path)
        else:
            images.setdefault(path.resolve(), (path, relative))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for file in _folder_files(path, recursive=recursive):
                take(file, file.parent.relative_to(path))
        elif path.is_file():
            take(path, Path())
        elif _GLOB_CHARS & set(str(item)):
            matches = sorted(glob.glob(str(item), recursive=recursive))
            if not matches:
                raise FileNotFoundError(f"input pattern {str(item)!r} matches no file")
            for match in map(Path, matches):
                files = _folder_files(match, recursive=recursive) if match.is_dir() else [match]
                for file in files:
                    take(file, Path())
        else:
            raise FileNotFoundError(f"input {str(item)!r} does not exist; check the path")
    if not images:
        raise ValueError(
            f"no image files among the inputs {[str(i) for i in inputs]}"
            + ("" if recursive else " (add --recursive for sub-folders)")
        )
    return list(images.values()), ignored


def plan_outputs(
    images: Sequence[tuple[Path, Path]], output_dir: str | os.PathLike, *, suffix: str = ""
) -> list[FileJob]:
    """Output path of every image: ``output_dir/<sub-folder>/<stem><suffix>.png``.

    Raises:
        ValueError: if ``suffix`` holds a path separator, if ``output_dir`` is a file, if an
            output folder is the folder of an input and ``suffix`` is empty, if an output would
            replace an input, or if two inputs would write the same output (all before any
            work).
    """
    root = Path(output_dir)
    if any(sep in suffix for sep in ("/", "\\")):
        raise ValueError(f"--suffix {suffix!r} must be part of a file name, without / or \\")
    if root.exists() and not root.is_dir():
        raise ValueError(f"--output {str(root)!r} is a file; pass a folder")
    sources = {source.resolve() for source, _ in images}
    jobs: dict[Path, FileJob] = {}
    for source, relative in images:
        output = root / relative / f"{source.stem}{suffix}.png"
        if not suffix and output.parent.resolve() == source.parent.resolve():
            raise ValueError(
                f"the output folder {str(output.parent)!r} is the folder of input "
                f"{str(source)!r}; pass --suffix (e.g. --suffix _restored) or another --output"
            )
        if output.resolve() in sources:
            raise ValueError(
                f"output {str(output)!r} would replace an input image; pick another --output "
                "or --suffix"
            )
        clash = jobs.get(output.resolve())
        if clash is not None:
            raise ValueError(
                f"inputs {str(clash.source)!r} and {str(source)!r} would both be written to "
                f"{str(output)!r}; restore them into different --output folders"
            )
        jobs[output.resolve()] = FileJob(source=source, output=output)
    return list(jobs.values())


def _check_model(model: nn.Module) -> None:
    """Refuse, before any work, a model whose input or output no image file can hold."""
    meta = model_meta(model)
    if meta.in_chans in _FILE_CHANNELS and meta.out_chans in _FILE_CHANNELS:
        return
    views = input_views(model, meta)
    if views > 1:
        what = f"{views} stacked views (dual-pixel left and right, {meta.in_chans} channels)"
        fix = "stack the views yourself and call treeattn.restore_image on the tensor"
    else:
        what = f"{meta.in_chans}-channel input and {meta.out_chans}-channel output"
        fix = "call treeattn.restore_image on tensors instead"
    raise ValueError(
        f"model {meta.name!r} takes {what}; restoring files reads and writes one gray or RGB "
        f"image per input — {fix}"
    )


def _to_channels(img: torch.Tensor, channels: int, *, gray_method: str) -> torch.Tensor:
    from treeattn.data.io import to_gray

    if img.shape[0] == channels:
        return img
    return to_gray(img, method=gray_method) if channels == 1 else img.expand(3, -1, -1)


def _write_atomic(path: Path, img: torch.Tensor, *, bit_depth: int) -> None:
    """Write through a hidden temporary file, so an interrupted run leaves no half output."""
    from treeattn.data.io import write_image

    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write_image(partial, img, bit_depth=bit_depth)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def restore_files(
    model: nn.Module,
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    recursive: bool = False,
    suffix: str = "",
    overwrite: bool = False,
    tile: int | None = None,
    overlap: int = 32,
    self_ensemble: bool = False,
    bf16: bool = False,
    quiet: bool = False,
) -> RestoreSummary:
    """Restore image files into ``output_dir`` with :func:`~treeattn.inference.api.restore_image`.

    Args:
        model: A treeattn model with 1 or 3 input and output channels.
        inputs: Image files, folders or glob patterns (see :func:`find_inputs`).
        output_dir: Output folder (created); one PNG per input, same stem and bit depth.
        recursive: Include sub-folders of input folders.
        suffix: Appended to each output stem (needed when writing into an input folder).
        overwrite: Replace existing outputs (otherwise they are skipped and listed).
        tile: Tiled processing (see :func:`~treeattn.inference.api.restore_image`).
        overlap: Tile overlap in input pixels.
        self_ensemble: ×8 self-ensemble.
        bf16: bfloat16 autocast.
        quiet: No progress bar and no per-file lines (warnings and failures are still printed).

    Returns:
        What was written, skipped, ignored and what failed (with the reasons).

    Raises:
        TypeError, ValueError, FileNotFoundError: for a model no image file can feed, bad
            settings, missing inputs or unsafe outputs — all before the first image is read.
    """
    from tqdm.auto import tqdm

    from treeattn.data.io import read_image_with_depth

    _check_model(model)
    meta = model_meta(model)
    flags = {"recursive": recursive, "overwrite": overwrite, "self_ensemble": self_ensemble}
    for name, flag in {**flags, "bf16": bf16, "quiet": quiet}.items():
        check_bool(name, flag)  # a string such as "no" would read as true
    check_tiling(tile, overlap, minimum=meta.multiple_of)
    check_precision(model, bf16=bf16)
    record = getattr(model, "provenance", None)
    gray_method = record.gray_method if record is not None else "luma"
    images, ignored = find_inputs(inputs, recursive=recursive)
    jobs = plan_outputs(images, output_dir, suffix=suffix)
    summary = RestoreSummary(ignored=ignored)
    if ignored:
        _say(f"skipped {len(ignored)} non-image file(s): {', '.join(map(str, ignored))}")
    if not overwrite:
        summary.skipped = [job.output for job in jobs if job.output.exists()]
        jobs = [job for job in jobs if not job.output.exists()]
    if summary.skipped:
        _say(
            f"skipped {len(summary.skipped)} existing output(s) (--overwrite replaces them): "
            + ", ".join(map(str, summary.skipped))
        )
    noticed: set[tuple[int, int]] = set()
    for job in tqdm(jobs, desc="restore", unit="img", disable=quiet, file=sys.stderr):
        start = time.perf_counter()
        try:
            img, bit_depth = read_image_with_depth(job.source)
            change = (img.shape[0], meta.in_chans)
            if change[0] != change[1] and change not in noticed:
                noticed.add(change)
                _say(
                    f"note: {change[0]}-channel inputs are converted to {change[1]} channel(s) "
                    f"for this model ({'gray: ' + gray_method if change[1] == 1 else 'RGB'})"
                )
            img = _to_channels(img, meta.in_chans, gray_method=gray_method)
            out = restore_image(
                model, img, tile=tile, overlap=overlap, self_ensemble=self_ensemble, bf16=bf16
            )
            job.output.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(job.output, out, bit_depth=bit_depth)
        except (OSError, ValueError, RuntimeError) as error:
            summary.failed.append((job.source, str(error)))
            _say(f"FAILED {job.source}: {error}")
            continue
        summary.written.append(job.output)
        if not quiet:
            _say(
                f"{job.source} ({img.shape[-1]}×{img.shape[-2]}, {bit_depth}-bit) -> "
                f"{job.output} ({out.shape[-1]}×{out.shape[-2]}) in "
                f"{time.perf_counter() - start:.2f} s"
            )
    if summary.failed:
        _say(
            f"{len(summary.failed)} image(s) failed: "
            + ", ".join(str(source) for source, _ in summary.failed)
        )
    return summary
