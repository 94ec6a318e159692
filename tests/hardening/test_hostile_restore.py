"""Hostile inputs to the inference surfaces: restore_image, restore_files, banded_forward,
load_model and export_model end in a clear error naming the argument, never a deep traceback."""

from pathlib import Path

import pytest
import torch

from treeattn import create_model, restore_image
from treeattn.inference.export import export_model
from treeattn.inference.files import restore_files
from treeattn.models import banded_forward
from treeattn.models.registry import load_model
from treeattn.ops.bands import band_execution


@pytest.fixture(scope="module")
def gray_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("hiir_unet_tiny", in_chans=1, out_chans=1).eval()


@pytest.mark.parametrize("name", ["self_ensemble", "bf16"])
def test_restore_image_refuses_strings_for_booleans(gray_model, name):
    with pytest.raises(TypeError, match=name):
        restore_image(gray_model, torch.rand(1, 12, 13), **{name: "no"})


def test_restore_image_refuses_meta_tensor(gray_model):
    with pytest.raises(ValueError, match="meta tensor"):
        restore_image(gray_model, torch.rand(1, 12, 13, device="meta"))


def test_restore_image_refuses_tile_below_model_multiple(gray_model):
    multiple = gray_model.meta.multiple_of
    with pytest.raises(ValueError, match=f"at least {multiple}"):
        restore_image(gray_model, torch.rand(1, 12, 13), tile=multiple - 1, overlap=0)


def test_restore_image_tile_at_model_multiple_matches_shape(gray_model):
    multiple = gray_model.meta.multiple_of
    img = torch.rand(1, 2 * multiple + 3, multiple + 1)
    out = restore_image(gray_model, img, tile=multiple, overlap=1)
    assert out.shape == img.shape and torch.isfinite(out).all()


def test_restore_files_refuses_string_flag_before_work(gray_model, tmp_path):
    with pytest.raises(TypeError, match="overwrite"):
        restore_files(gray_model, [tmp_path / "missing.png"], tmp_path / "out", overwrite="no")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"tile_pixels": "64"}, TypeError),
        ({"tile_pixels": 2.5}, TypeError),
        ({"min_pixels": "0"}, TypeError),
        ({"tile_pixels": 0}, ValueError),
    ],
)
def test_banded_forward_bad_settings_name_the_argument(gray_model, kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        banded_forward(gray_model, torch.rand(1, 1, 12, 13), **kwargs)


def test_band_execution_refuses_string_enabled():
    with pytest.raises(TypeError, match="enabled"), band_execution(enabled="no"):
        pass


def test_banded_forward_refuses_non_module():
    with pytest.raises(TypeError, match=r"nn\.Module"):
        banded_forward(None, torch.rand(1, 1, 12, 13))


def test_load_model_from_an_image_file_says_it_is_a_file(tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG")
    with pytest.raises(ValueError, match="is a file"):
        load_model(image)


@pytest.mark.parametrize("name", ["model.png", "model.onnx", "folder"])
def test_export_refuses_wrong_suffix_or_folder(gray_model, tmp_path, name):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match=r"\.pt2"):
        export_model(gray_model, tmp_path / name, format="pt2", size=(16, 16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_export_adds_suffix_to_a_bare_name(gray_model, tmp_path):
    path = export_model(gray_model, tmp_path / "bare", format="pt2", size=(16, 16))
    assert path == Path(tmp_path / "bare.pt2") and path.is_file()


def test_export_refuses_a_float_size(tmp_path):
    model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1)
    with pytest.raises(TypeError, match=r"size\[0\]"):
        export_model(model, tmp_path / "m", format="pt2", size=(2.5, 3))


def test_info_on_an_image_file_says_it_is_a_file(tmp_path, capsys):
    from treeattn.cli import main

    image = tmp_path / "photo.png"
    image.write_bytes(b"not really")
    assert main(["info", str(image)]) == 2
    assert "is a file" in capsys.readouterr().err
