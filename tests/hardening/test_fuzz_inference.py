"""Hypothesis fuzzing of the inference API and the command line: restore_image, restore_files,
create_model / load_model names and flags, export_model arguments, and `treeattn restore / info`
argument lists.

The rule is the one of :mod:`test_fuzz_public_apis`: every call gives the right answer or a
clear error — ``TypeError`` / ``ValueError`` (``FileNotFoundError`` for files) from the API,
exit status 2 with a message from the command line — and the inputs are never modified, nothing
is written outside the output folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from treeattn import create_model, restore_files, restore_image
from treeattn.cli import main
from treeattn.data.io import read_image, write_image
from treeattn.inference import export_model, load_model
from treeattn.models import list_pretrained, save_pretrained

CLEAR = (TypeError, ValueError)
FILE_CLEAR = (TypeError, ValueError, FileNotFoundError)
SHIPPED = list_pretrained()[0]

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "no", "yes", "True", "16", "cpu", "meta", "cuda", "x.png"]),
    st.lists(st.integers(-1, 9), max_size=3),
    st.tuples(st.integers(0, 9), st.integers(0, 9)),
)


def _or_junk(valid: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` three times in four, else junk (``st.one_of`` would flatten junk's branches and
    draw a valid value only one time in eight)."""
    return st.integers(0, 3).flatmap(lambda pick: junk if pick == 0 else valid)


torch.manual_seed(0)
_MODEL = create_model(
    "hiir_unet_tiny",
    in_chans=1,
    out_chans=1,
    dims=(4, 8),
    depths=(1, 1),
    decoder_depths=(1,),
    num_heads=(1, 1),
    patch_sizes=((2, 4), (2, 4)),
).eval()
_MODEL_DIR = Path(tempfile.mkdtemp(prefix="treeattn-fuzz-inference-"))
save_pretrained(_MODEL, _MODEL_DIR)
_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.uint8]


@given(
    shape=st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 9), st.integers(0, 9)),
    batched=st.booleans(),
    dtype=st.sampled_from(_DTYPES),
    tile=st.one_of(st.none(), st.integers(-1, 12)),
    overlap=st.integers(-1, 6),
    self_ensemble=st.booleans(),
)
def test_restore_image(shape, batched, dtype, tile, overlap, self_ensemble):
    img = torch.rand(shape if batched else shape[1:])
    img = (img * 255).to(dtype) if not dtype.is_floating_point else img.to(dtype)
    try:
        out = restore_image(_MODEL, img, tile=tile, overlap=overlap, self_ensemble=self_ensemble)
    except CLEAR:
        return
    assert dtype.is_floating_point and img.shape[-3] == 1 and min(img.shape) > 0
    assert out.shape == img.shape and out.dtype == img.dtype
    assert torch.isfinite(out.float()).all()


_IMAGE_ARGS = {"tile": None, "overlap": 32, "self_ensemble": False, "bf16": False}


@given(field=st.sampled_from(sorted(_IMAGE_ARGS)), value=junk)
def test_restore_image_one_argument_replaced(field, value):
    """One argument replaced by anything: a clear error, or a value of the right kind."""
    img = torch.rand(1, 7, 9)
    try:
        out = restore_image(_MODEL, img, **{**_IMAGE_ARGS, field: value})
    except CLEAR:
        return
    if field in ("self_ensemble", "bf16"):
        assert isinstance(value, bool)
    assert out.shape == img.shape and torch.isfinite(out).all()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# Inputs and outputs as a user might name them, relative to a fresh folder holding in/a.png,
# in/b.png and in/notes.txt (junk stands for the wrong types).
_INPUTS = _or_junk(
    st.sampled_from(
        [
            "in",
            "in/a.png",
            ["in/a.png", "in/b.png"],
            ["in"],
            "in/*.png",
            "in/missing.png",
            "in/notes.txt",
            [],
            [None],
            ["in", "in/a.png"],
        ]
    )
)
_OUTPUTS = st.sampled_from(["out", "out.png", "in/a.png/out", "in", "in/notes.txt", "deep/out"])


def _absolute(value: object, root: Path) -> object:
    """Strings as paths inside ``root`` (never the working folder); other values as they are."""
    if isinstance(value, str) and value:
        return str(root / value)
    if isinstance(value, list):
        return [_absolute(v, root) for v in value]
    return value


def _restore_in_fresh_folder(inputs, output, **kwargs):
    """restore_files in a fresh folder holding in/a.png, in/b.png and in/notes.txt: the summary
    (``None`` for a clear error); the inputs are checked untouched."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_image(root / "in" / "a.png", torch.rand(1, 9, 13))
        write_image(root / "in" / "b.png", torch.rand(1, 5, 6))
        (root / "in" / "notes.txt").write_text("mine")
        before = _tree(root / "in")
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                summary = restore_files(
                    _MODEL, _absolute(inputs, root), _absolute(output, root), **kwargs
                )
        except FILE_CLEAR:
            summary = None
        after = _tree(root / "in")
        # inputs untouched; new files only where an output folder inside in/ was accepted
        assert {name: after[name] for name in before} == before
        if summary is None:
            assert after.keys() == before.keys()
            return None
        assert summary.ok and summary.written
        for path in summary.written:
            assert path.suffix == ".png" and read_image(path).shape[0] == 1
        return summary


@given(
    inputs=_INPUTS,
    output=_OUTPUTS,
    suffix=st.sampled_from(["", "_x", "a/b"]),
    tile=st.one_of(st.none(), st.integers(-1, 12)),
    overlap=st.integers(-1, 6),
    recursive=st.booleans(),
    overwrite=st.booleans(),
)
def test_restore_files(inputs, output, suffix, tile, overlap, recursive, overwrite):
    _restore_in_fresh_folder(
        inputs,
        output,
        suffix=suffix,
        tile=tile,
        overlap=overlap,
        recursive=recursive,
        overwrite=overwrite,
        quiet=True,
    )


_FILES_ARGS = {
    "inputs": "in",
    "output": "out",
    "suffix": "",
    "tile": None,
    "overlap": 32,
    "recursive": False,
    "overwrite": False,
    "self_ensemble": False,
    "quiet": True,
}


@given(field=st.sampled_from(sorted(_FILES_ARGS)), value=junk)
def test_restore_files_one_argument_replaced(field, value):
    arguments = {**_FILES_ARGS, field: value}
    summary = _restore_in_fresh_folder(
        arguments.pop("inputs"), arguments.pop("output"), **arguments
    )
    if summary is not None and field in ("recursive", "overwrite", "self_ensemble", "quiet"):
        assert isinstance(value, bool)


_CLI_FLAGS = ["--tile", "--tile-overlap", "--threads", "--device", "--suffix", "-o"]
_CLI_VALUES = ["0", "-1", "4", "8", "999", "meta", "cpu", "cuda", "gpu", "x.png", "", "a/b", "nan"]
_CLI_SWITCHES = ["--recursive", "--overwrite", "--quiet", "--bf16", "--self-ensemble"]
_CLI_TOKENS = st.one_of(
    st.tuples(st.sampled_from(_CLI_FLAGS), st.sampled_from(_CLI_VALUES)),
    st.tuples(st.sampled_from(_CLI_SWITCHES)),
)


@given(
    tokens=st.lists(_CLI_TOKENS, max_size=4),
    model=st.sampled_from(["MODEL", SHIPPED + "x", "hiir_unet_tiny", "in/a.png", ""]),
)
def test_cli_restore_arguments(tokens, model):
    """Relative paths in the arguments (``-o x.png``, ``-o a/b``) land in a fresh folder."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_image(root / "in" / "a.png", torch.rand(1, 9, 13))
        before = _tree(root / "in")
        args = [str(_MODEL_DIR) if model == "MODEL" else model, "in", "-o", "out"]
        args += [token for group in tokens for token in group]
        err = io.StringIO()
        cwd = Path.cwd()
        os.chdir(root)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = main(["restore", *args])
        except SystemExit as exit_:  # argparse: usage and one error line
            status = exit_.code
        finally:
            os.chdir(cwd)
        assert _tree(root / "in") == before
        assert status in (0, 2), err.getvalue()
        written = [p for p in root.rglob("*.png") if p.parent != root / "in"]
        assert (status == 0) == bool(written), err.getvalue()
        assert status == 0 or err.getvalue().strip(), "exit 2 without a message"


@given(
    name=_or_junk(st.sampled_from([SHIPPED, SHIPPED + "x", "hiir_unet_tiny", "hiir_b_sr_x5"])),
    pretrained=_or_junk(st.booleans()),
    device=_or_junk(st.sampled_from([None, "cpu", "meta"])),
)
def test_create_model_name_pretrained_and_device(name, pretrained, device):
    try:
        model = create_model(name, pretrained=pretrained, device=device)
    except CLEAR:
        return
    assert isinstance(pretrained, bool) and isinstance(name, str)
    assert name in list_pretrained() if pretrained else model.meta.name == name


@given(
    source=_or_junk(st.sampled_from(["MODEL", SHIPPED, SHIPPED[:-1]])),
    device=_or_junk(st.sampled_from([None, "cpu", "meta"])),
)
def test_load_model_source_and_device(source, device):
    source = str(_MODEL_DIR) if source == "MODEL" else source
    try:
        model = load_model(source, device=device)
    except (*CLEAR, FileNotFoundError):
        return
    assert next(model.parameters()).device.type == torch.device(device or "cpu").type


@given(
    format=_or_junk(st.sampled_from(["pt2", "tflite", "PT2"])),
    size=_or_junk(st.tuples(st.integers(-1, 1), st.integers(-1, 1))),
    name=_or_junk(st.sampled_from(["m.pt2", "m.onnx", "m.png", "sub/"])),
    overwrite=_or_junk(st.booleans()),
)
def test_export_model_arguments(format, size, name, overwrite):
    """Only (1, 1) is a valid size here, so that few examples export (ONNX, slow, is left to
    test_export.py)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name if isinstance(name, str) and name else name
        try:
            written = export_model(_MODEL, path, format=format, size=size, overwrite=overwrite)
        except (*CLEAR, ImportError):
            return
        assert written.is_file() and written.suffix == f".{format}"


@given(
    name=st.one_of(
        st.sampled_from(["hiir_unet_tiny", SHIPPED, SHIPPED + "x", "nope", "in/a.png"]),
        st.text(max_size=6),
    ),
    size=st.one_of(st.none(), st.tuples(st.integers(-2, 40), st.integers(-2, 40))),
    batch=st.integers(-1, 3),
)
def test_cli_info_arguments(name, size, batch):
    args = ["info", name, "--batch", str(batch)]
    args += [] if size is None else ["--size", *map(str, size)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(args)
        except SystemExit as exit_:
            status = exit_.code
    assert status in (0, 2), err.getvalue()
    assert status == 0 or err.getvalue().strip()


@pytest.mark.parametrize("flag", ["--threads", "--tile", "--tile-overlap"])
def test_cli_numbers_that_are_not_numbers_exit_2(flag, capsys):
    with pytest.raises(SystemExit, match="2"):
        main(["restore", str(_MODEL_DIR), "x.png", "-o", "out", flag, "many"])
    assert flag in capsys.readouterr().err
