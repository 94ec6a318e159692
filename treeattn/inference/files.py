"""Restore image files safely: find the inputs, plan the outputs, restore each, report.

Nothing is lost and nothing is mixed up: every rule is checked before the first image is
restored — an output never replaces an input, two inputs never share an output, an output
folder that is an input folder needs a suffix, and the model must take images a file can hold.
Existing outputs are skipped unless ``overwrite``; non-image files are skipped with a warning;
an image that cannot be read or restored is reported by name and the others still run. Outputs
are PNG files with the input's stem (plus ``suffix``) and bit depth, written atomically.

Links: a file link is an input of its own, named by the link (a folder holding ``real.png`` and
``link.png → real.png`` gives both outputs); with ``recursive`` folder links are followed. A link
that leads nowhere (missing target, or a loop) with an image name, and a folder link back into
the folders being walked, are refused before any work. An alpha channel is dropped (the outputs
are gray or RGB), with a notice.

Needs the ``[data]`` extra (OpenCV for decoding, tqdm for the progress bar).
"""

from __future__ import annotations

import errno
import glob
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from treeattn.inference.api import check_run, input_views, model_meta
from treeattn.inference.runner import Runner, restore_with
from treeattn.validate import check_bool, check_path, make_writable_dir

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


def _dead_end(entry: Path) -> str:
    """Why ``entry`` (neither a folder nor a regular file) cannot be read, in words."""
    if entry.is_symlink():
        try:
            os.stat(entry)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return "a symbolic link loop"
            return f"a symbolic link to {os.readlink(entry)!r}, which does not exist"
    return "not a regular file (a pipe, socket or device)"


def _check_entry(entry: Path, *, where: str) -> None:
    """Refuse an image-named entry that is neither a folder nor a readable regular file."""
    if not entry.is_dir() and not entry.is_file() and _is_image(entry):
        raise FileNotFoundError(
            f"{where} {str(entry)!r} is {_dead_end(entry)}; remove or fix it (or move it out "
            "of the input folder)"
        )


def _folder_files(folder: Path, *, recursive: bool) -> list[Path]:
    """The entries of ``folder`` that are not folders (sub-folders too with ``recursive``).

    Hidden entries are left out; folder links are followed, and one that leads back into the
    folders being walked (a loop) is refused. Image-named entries that cannot be read (dead
    links, pipes) are refused; other non-folder entries are returned (non-images: ignored).
    """
    found: list[Path] = []

    def walk(current: Path, chain: tuple[Path, ...]) -> None:
        for entry in sorted(current.iterdir()):
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                _check_entry(entry, where=f"input folder {str(folder)!r} holds")
                found.append(entry)
            elif recursive:
                real = entry.resolve()
                if real in chain:
                    raise FileNotFoundError(
                        f"input folder {str(folder)!r} holds {str(entry)!r}, a link back to "
                        f"{str(real)!r} which holds it (a loop); remove the link, or restore "
                        "without --recursive"
                    )
                walk(entry, (*chain, real))

    walk(folder, (folder.resolve(),))
    return sorted(found)


def _as_inputs(inputs: object) -> list[str | os.PathLike]:
    """``inputs`` as a list of paths: one ``str``/``Path`` is one input (not its characters)."""
    if isinstance(inputs, (str, os.PathLike)):
        return [inputs]
    if isinstance(inputs, (bytes, bytearray)) or not isinstance(inputs, Iterable):
        raise TypeError(
            f"inputs={inputs!r} must be a path (str or pathlib.Path) or a list of paths, got "
            f"{type(inputs).__name__}"
        )
    items = list(inputs)
    for index, item in enumerate(items):
        check_path(f"inputs[{index}]", item)
    if not items:
        raise ValueError("inputs is empty; pass image files, folders or glob patterns")
    return items


def find_inputs(
    inputs: str | os.PathLike | Sequence[str | os.PathLike], *, recursive: bool = False
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """The images named by files, folders and glob patterns, and the non-image files met.

    Args:
        inputs: Image files, folders (their images; hidden files are left out) or glob patterns;
            one ``str`` or ``Path`` is one input.
        recursive: Also take the images in sub-folders of folders (kept as sub-folders of the
            output; folder links are followed); ``**`` in patterns matches sub-folders.

    Returns:
        ``([(image, output sub-folder relative to the output folder), ...], [non-image, ...])``,
        each image path once, in the order given (folders sorted by name). A file link is an
        image of its own (named by the link), even when its target is among the inputs too.

    Raises:
        TypeError: if ``inputs`` is not a path or a list of paths.
        FileNotFoundError: for a path that does not exist, a pattern that matches nothing, an
            image-named link that leads nowhere (missing target or a loop), or a folder link
            that loops back (with ``recursive``).
        ValueError: if ``inputs`` is empty or no image is found at all.
    """
    items = _as_inputs(inputs)
    images: dict[Path, tuple[Path, Path]] = {}
    ignored: list[Path] = []

    def take(path: Path, relative: Path) -> None:
        if not _is_image(path):
            ignored.append(path)
        else:  # the same path given twice counts once; a link is an input of its own
            images.setdefault(Path(os.path.abspath(path)), (path, relative))

    for item in items:
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
                _check_entry(match, where=f"input pattern {str(item)!r} matches")
                files = _folder_files(match, recursive=recursive) if match.is_dir() else [match]
                for file in files:
                    take(file, Path())
        elif path.is_symlink():
            raise FileNotFoundError(f"input {str(item)!r} is {_dead_end(path)}; fix the link")
        else:
            raise FileNotFoundError(f"input {str(item)!r} does not exist; check the path")
    if not images:
        raise ValueError(
            f"no image files among the inputs {[str(i) for i in items]}"
            + ("" if recursive else " (add --recursive for sub-folders)")
        )
    return list(images.values()), ignored


def _check_output_root(root: Path) -> None:
    """Refuse an output folder path that is a file, lies below a file or names an image."""
    from treeattn.data.io import IMAGE_EXTENSIONS

    if root.exists() and not root.is_dir():
        raise ValueError(f"--output {str(root)!r} is a file; pass a folder")
    for parent in root.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"--output {str(root)!r} lies below {str(parent)!r}, which is a file; pass "
                    "a folder path"
                )
            break
    if not root.exists() and root.suffix.lower() in IMAGE_EXTENSIONS:
        raise ValueError(
            f"--output {str(root)!r} names an image file, but restoring writes a folder: one "
            f"PNG per input, named after it; pass a folder, e.g. --output "
            f"{str(root.with_suffix(''))!r} (or create a folder of that name first)"
        )


def plan_outputs(
    images: Sequence[tuple[Path, Path]], output_dir: str | os.PathLike, *, suffix: str = ""
) -> list[FileJob]:
    """Output path of every image: ``output_dir/<sub-folder>/<stem><suffix>.png``.

    Raises:
        TypeError: if ``output_dir`` is not a path or ``suffix`` not a ``str``.
        ValueError: if ``suffix`` holds a path separator, if ``output_dir`` is a file, lies below
            a file or names an image file that does not exist (``-o result.png``), if an output
            folder is the folder of an input and ``suffix`` is empty, if an output would
            replace an input, or if two inputs would write the same output (all before any
            work).
    """
    root = check_path("output_dir", output_dir)
    if not isinstance(suffix, str):
        raise TypeError(
            f"suffix={suffix!r} must be a str ('' for none), got {type(suffix).__name__}"
        )
    if any(sep in suffix for sep in ("/", "\\")):
        raise ValueError(f"--suffix {suffix!r} must be part of a file name, without / or \\")
    _check_output_root(root)
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
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
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
    """Restore image files into ``output_dir`` as :func:`~treeattn.inference.api.restore_image`
    restores tensors: the settings are checked once, then every image goes through one
    :class:`~treeattn.inference.runner.Runner`.

    Args:
        model: A treeattn model with 1 or 3 input and output channels.
        inputs: Image files, folders or glob patterns (see :func:`find_inputs`); one ``str`` or
            ``Path`` is one input.
        output_dir: Output folder (created, and checked writable, before the first image); one
            PNG per input, same stem and bit depth, gray or RGB (an alpha channel is dropped).
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
        TypeError, ValueError, FileNotFoundError: for a model no image file can feed (or with
            meta weights), bad settings, missing inputs, unsafe outputs or an output folder
            that cannot be written — all before the first image is read.
    """
    from tqdm.auto import tqdm

    from treeattn.data.io import read_image_file

    # Every check once, here: the images below go through the runner unchecked.
    check_run(model, tile=tile, overlap=overlap, self_ensemble=self_ensemble, bf16=bf16)
    _check_model(model)
    meta = model_meta(model)
    for name, flag in {"recursive": recursive, "overwrite": overwrite, "quiet": quiet}.items():
        check_bool(name, flag)  # a string such as "no" would read as true
    runner = Runner(model, tile=tile, overlap=overlap, self_ensemble=self_ensemble)
    record = getattr(model, "provenance", None)
    gray_method = record.gray_method if record is not None else "luma"
    images, ignored = find_inputs(inputs, recursive=recursive)
    jobs = plan_outputs(images, output_dir, suffix=suffix)
    make_writable_dir("--output", Path(output_dir))
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
    noticed: set[tuple[int, int] | str] = set()
    for job in tqdm(jobs, desc="restore", unit="img", disable=quiet, file=sys.stderr):
        start = time.perf_counter()
        try:
            file = read_image_file(job.source)
            img, bit_depth = file.image, file.bit_depth
            if file.alpha is not None and "alpha" not in noticed:
                noticed.add("alpha")
                _say(
                    f"note: the alpha (transparency) channel of {job.source} and of any other "
                    "input with one is dropped; outputs are gray or RGB PNGs without alpha"
                )
            change = (img.shape[0], meta.in_chans)
            if change[0] != change[1] and change not in noticed:
                noticed.add(change)
                _say(
                    f"note: {change[0]}-channel inputs are converted to {change[1]} channel(s) "
                    f"for this model ({'gray: ' + gray_method if change[1] == 1 else 'RGB'})"
                )
            img = _to_channels(img, meta.in_chans, gray_method=gray_method)
            out = restore_with(runner, img, bf16=bf16)
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
