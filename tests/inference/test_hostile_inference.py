"""Hostile inputs to `treeattn restore / info / export` and the inference API (round 3).

Every case ends in a clear error naming the argument or file and the fix — before any work where
it can be known up front (CLI: exit 2, one ``treeattn:`` line) — or in the right result.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from inference_testlib import tiny_denoiser, write_random

from treeattn import create_model, from_pretrained, restore_files, restore_image
from treeattn.cli import main
from treeattn.data.io import read_image, read_image_file
from treeattn.inference.export import export_files, export_model, onnx_data_file
from treeattn.models import list_pretrained
from treeattn.threads import available_cores

SHIPPED = list_pretrained()[0]


def _restore(*args) -> int:
    return main(["restore", *map(str, args)])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("treeattn: "), err
    return err


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "in"
    write_random(folder / "a.png")
    return folder


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_denoiser()


# --- the output folder -------------------------------------------------------------------------


def test_output_below_a_file_is_refused_before_any_work(gray_model_dir, photos, capsys):
    assert _restore(gray_model_dir, photos, "-o", photos / "a.png" / "out") == 2
    err = _one_error_line(capsys)
    assert "lies below" in err and "a.png" in err and "which is a file" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_an_output_that_cannot_be_written_is_refused_before_any_work(model, photos, capsys):
    with pytest.raises(ValueError, match=r"--output '/proc/treeattn-out' cannot be written"):
        restore_files(model, photos, "/proc/treeattn-out", quiet=True)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_output_folder_is_refused(gray_model_dir, photos, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert _restore(gray_model_dir, photos, "-o", locked / "out") == 2
        assert "cannot be written" in _one_error_line(capsys)
    finally:
        locked.chmod(0o700)


def test_an_output_named_like_an_image_is_refused(gray_model_dir, photos, tmp_path, capsys):
    assert _restore(gray_model_dir, photos / "a.png", "-o", tmp_path / "result.png") == 2
    err = _one_error_line(capsys)
    assert "names an image file" in err and "result" in err
    assert not (tmp_path / "result.png").exists()
    (tmp_path / "made.png").mkdir()  # an existing folder of that name is a folder
    assert _restore(gray_model_dir, photos / "a.png", "-o", tmp_path / "made.png", "--quiet") == 0
    assert (tmp_path / "made.png" / "a.png").is_file()


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("device", "message"), [("meta", "shapes only"), ("gpu9", "device name")])
def test_meta_or_unknown_device_is_refused_by_the_cli(
    gray_model_dir, photos, tmp_path, capsys, device, message
):
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "out", "--device", device) == 2
    err = _one_error_line(capsys)
    assert f"--device={device!r}" in err and message in err
    assert not (tmp_path / "out").exists()
    export = ["export", str(gray_model_dir), "--format", "pt2", "--size", "8", "8"]
    assert main([*export, "-o", str(tmp_path / "m.pt2"), "--device", device]) == 2
    assert message in _one_error_line(capsys) and not (tmp_path / "m.pt2").exists()


def test_meta_weights_are_refused_by_the_api(photos, tmp_path):
    meta_model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1, device="meta")
    with pytest.raises(ValueError, match="meta device"):
        restore_image(meta_model, torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="meta device"):
        restore_files(meta_model, photos, tmp_path / "out")
    with pytest.raises(ValueError, match="meta device"):
        export_model(meta_model, tmp_path / "m.pt2", format="pt2", size=(8, 8))
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.pt2").exists()


def test_loading_weights_onto_meta_is_refused(gray_model_dir):
    from treeattn.inference import load_model

    for load in (from_pretrained, load_model):
        with pytest.raises(ValueError, match="device='meta' holds shapes only"):
            load(gray_model_dir, device="meta")


def test_more_threads_than_cores_is_refused(gray_model_dir, photos, tmp_path, capsys):
    cores = available_cores()
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "o", "--threads", cores + 1) == 2
    err = _one_error_line(capsys)
    assert f"--threads {cores + 1}" in err and f"--threads {cores} or fewer" in err
    assert not (tmp_path / "o").exists()


def test_tile_overlap_without_tile_is_refused(gray_model_dir, photos, tmp_path, capsys):
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "o", "--tile-overlap", "8") == 2
    assert "only applies to tiles; add --tile" in _one_error_line(capsys)
    assert not (tmp_path / "o").exists()


# --- input folders: links and alpha ------------------------------------------------------------


def test_a_link_loop_in_an_input_folder_is_refused(gray_model_dir, photos, tmp_path, capsys):
    (photos / "self.png").symlink_to("self.png")
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "out") == 2
    err = _one_error_line(capsys)
    assert "self.png" in err and "symbolic link loop" in err
    assert not (tmp_path / "out").exists()


def test_a_dead_link_in_an_input_folder_is_refused(gray_model_dir, photos, tmp_path, capsys):
    (photos / "gone.png").symlink_to("missing.png")
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "out") == 2
    err = _one_error_line(capsys)
    assert "gone.png" in err and "'missing.png', which does not exist" in err


def test_a_folder_link_loop_with_recursive_is_refused(gray_model_dir, photos, tmp_path, capsys):
    (photos / "sub").mkdir()
    (photos / "sub" / "back").symlink_to("..")
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "out", "--recursive") == 2
    assert "a loop" in _one_error_line(capsys)
    # without --recursive sub-folders are not walked: the folder restores
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "out", "--quiet") == 0


def test_linked_folders_are_followed_with_recursive(model, photos, tmp_path):
    write_random(tmp_path / "elsewhere" / "far.png")
    (photos / "linked").symlink_to(tmp_path / "elsewhere")
    summary = restore_files(model, photos, tmp_path / "out", recursive=True, quiet=True)
    assert sorted(p.relative_to(tmp_path / "out") for p in summary.written) == [
        Path("a.png"),
        Path("linked/far.png"),
    ]


def test_a_file_link_is_an_input_of_its_own(model, photos, tmp_path):
    (photos / "link.png").symlink_to("a.png")
    summary = restore_files(model, photos, tmp_path / "out", quiet=True)
    assert sorted(p.name for p in summary.written) == ["a.png", "link.png"]
    torch.testing.assert_close(
        read_image(tmp_path / "out" / "a.png"), read_image(tmp_path / "out" / "link.png")
    )
    # the same path given twice is still restored once
    again = restore_files(model, [photos / "a.png", photos / "a.png"], tmp_path / "o2", quiet=True)
    assert [p.name for p in again.written] == ["a.png"]


def test_alpha_is_dropped_with_a_notice(model, tmp_path, capsys):
    rgba = np.random.default_rng(0).integers(0, 256, size=(9, 11, 4), dtype=np.uint8)
    rgba[..., 3] = 7
    assert cv2.imwrite(str(tmp_path / "icon.png"), rgba)
    file = read_image_file(tmp_path / "icon.png")
    assert file.image.shape == (3, 9, 11) and file.alpha.shape == (1, 9, 11)
    torch.testing.assert_close(file.alpha, torch.full((1, 9, 11), 7 / 255))
    restore_files(model, tmp_path / "icon.png", tmp_path / "out")
    err = capsys.readouterr().err
    assert "alpha (transparency) channel of" in err and "icon.png" in err
    assert "3-channel inputs are converted to 1 channel" in err
    assert read_image(tmp_path / "out" / "icon.png").shape == (1, 9, 11)


# --- Python API argument types -----------------------------------------------------------------


def test_one_path_is_one_input(model, photos, tmp_path):
    for single in (str(photos / "a.png"), photos / "a.png"):
        summary = restore_files(model, single, tmp_path / "out", overwrite=True, quiet=True)
        assert [p.name for p in summary.written] == ["a.png"]


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"suffix": None}, TypeError, "suffix"),
        ({"output_dir": None}, TypeError, "output_dir"),
        ({"inputs": None}, TypeError, "inputs"),
        ({"inputs": [None]}, TypeError, r"inputs\[0\]"),
        ({"inputs": []}, ValueError, "inputs is empty"),
        ({"output_dir": ""}, ValueError, "output_dir"),
    ],
)
def test_restore_files_types_name_the_argument(model, photos, tmp_path, kwargs, error, name):
    arguments = {"inputs": photos, "output_dir": tmp_path / "out", **kwargs}
    inputs, output_dir = arguments.pop("inputs"), arguments.pop("output_dir")
    with pytest.raises(error, match=name):
        restore_files(model, inputs, output_dir, **arguments)
    assert not (tmp_path / "out").exists()


def test_from_pretrained_and_load_model_name_the_argument():
    from treeattn.inference import load_model

    with pytest.raises(TypeError, match="directory=None"):
        from_pretrained(None)
    with pytest.raises(TypeError, match="source=None"):
        load_model(None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_an_unavailable_device_is_a_value_error(tmp_path, gray_model_dir):
    from treeattn.inference import load_model

    with pytest.raises(ValueError, match="device='cuda' is not available here"):
        create_model("hiir_unet_tiny", device="cuda")
    with pytest.raises(ValueError, match="device='cuda' is not available here"):
        load_model(gray_model_dir, device="cuda")
    with pytest.raises(ValueError, match="not a device name"):
        create_model("hiir_unet_tiny", device="gpu7")


# --- model names -------------------------------------------------------------------------------


def test_info_suggests_a_shipped_model_for_a_typo(capsys):
    assert main(["info", SHIPPED + "x"]) == 2
    err = _one_error_line(capsys)
    assert f"did you mean {SHIPPED!r} (shipped, trained)" in err


def test_restore_suggests_a_shipped_model_for_a_typo(photos, tmp_path, capsys):
    assert _restore(SHIPPED[:-1], photos, "-o", tmp_path / "out") == 2
    assert f"did you mean {SHIPPED!r}" in _one_error_line(capsys)


def test_restore_with_an_untrained_architecture_says_so(photos, tmp_path, capsys):
    assert _restore("hiir_unet_tiny", photos, "-o", tmp_path / "out") == 2
    assert "untrained architecture" in _one_error_line(capsys)


def test_create_model_pretrained_must_be_a_bool_and_a_shipped_name():
    with pytest.raises(TypeError, match="pretrained='no' must be a bool"):
        create_model(SHIPPED, pretrained="no")
    with pytest.raises(TypeError, match="pretrained='no' must be a bool"):
        create_model("hiir_unet_tiny", pretrained="no")
    with pytest.raises(ValueError, match="registered architecture with no shipped weights"):
        create_model("hiir_unet_tiny", pretrained=True)
    with pytest.raises(ValueError, match=f"did you mean {SHIPPED!r} \\(shipped, trained\\)"):
        create_model(SHIPPED + "x")


# --- export ------------------------------------------------------------------------------------


def test_export_of_a_run_folder_is_named_after_the_folder(gray_model_dir, tmp_path, monkeypatch):
    run = tmp_path / "denoise_run"
    shutil.copytree(gray_model_dir, run / "model")
    monkeypatch.chdir(run)
    assert main(["export", ".", "--format", "pt2", "--size", "8", "8"]) == 0
    assert (run / "denoise_run_8x8.pt2").is_file() and not (run / "_8x8.pt2").exists()
    assert main(["export", "model", "--format", "pt2", "--size", "8", "4"]) == 0
    assert (run / "denoise_run_8x4.pt2").is_file()


def test_export_files_name_the_onnx_weights_side_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"graph")
    assert export_files(path) == [path]
    onnx_data_file(path).write_bytes(b"weights")
    assert export_files(path) == [path, tmp_path / "m.onnx.data"]
    assert export_files(tmp_path / "m.pt2") == [tmp_path / "m.pt2"]


# --- public names that are not entry points ----------------------------------------------------


@pytest.mark.parametrize("name", ["hiir_unet_tiny", "hiir_sr_tiny_x2", "swin_sr_tiny_x2"])
def test_forward_padded_refuses_unpadded_sizes_and_names_the_entry_points(name):
    model = create_model(name).eval()
    multiple = model.meta.multiple_of
    with pytest.raises(ValueError, match=r"not an entry point.*restore_image"):
        model.forward_padded(torch.rand(1, 3, multiple + 1, multiple))
    with pytest.raises(ValueError, match=f"multiples of {multiple}"):
        model.forward_padded(torch.rand(1, 3, multiple, 2 * multiple - 1))
    with torch.no_grad():
        out = model.forward_padded(torch.rand(1, 3, multiple, multiple))
    assert out.shape[-2:] == (multiple * model.meta.scale,) * 2
