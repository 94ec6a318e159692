"""Shipped pretrained models: lookup mechanics (on a stand-in folder) and every shipped model."""

import json

import pytest
import torch

import treeattn
from treeattn.cli import main as cli_main
from treeattn.data import embedded
from treeattn.data.benchmark import evaluate_folder
from treeattn.data.degradations import build_degradation
from treeattn.models import (
    HiIRUNet,
    create_model,
    from_pretrained,
    list_pretrained,
    pretrained_info,
    save_pretrained,
)
from treeattn.models import registry as pretrained_module

SHIPPED = list_pretrained()


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A pretrained folder holding a tiny gray model and a benchmark file."""
    model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1, dims=(8, 16, 32, 64))
    save_pretrained(model, tmp_path / "tiny_gray")
    rows = [
        {"method": "bm3d", "set": "Set12", "level": 25.0, "psnr": 29.9, "ssim": 0.85},
        {"method": "dncnn_s25", "set": "Set12", "level": 25.0, "psnr": 30.4, "ssim": 0.87},
        {"method": "treeattn", "set": "Set12", "level": 25.0, "psnr": 30.1, "ssim": 0.86},
        {"method": "treeattn", "set": "Set12", "level": 50.0, "psnr": 27.0, "ssim": 0.77},
        {"method": "bm3d", "set": "Urban100", "level": 25.0, "psnr": 28.0, "ssim": 0.8},
        {"method": "treeattn", "set": "Urban100", "level": 25.0, "psnr": 28.5, "ssim": 0.84},
    ]
    rows[-2]["images"] = rows[-1]["images"] = 20
    benchmark = {"summary": "stand-in gray model", "rows": rows}
    (tmp_path / "tiny_gray" / "benchmark.json").write_text(json.dumps(benchmark))
    (tmp_path / "not_a_model").mkdir()
    monkeypatch.setattr(pretrained_module, "PRETRAINED_ROOT", tmp_path)
    return model


def test_lookup_lists_only_complete_folders(stand_in):
    assert list_pretrained() == ["tiny_gray"]
    assert list_pretrained("*color*") == []


def test_create_model_pretrained_loads_the_shipped_weights(stand_in):
    loaded = create_model("tiny_gray", pretrained=True)
    assert not loaded.training
    for key, value in stand_in.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    by_name = from_pretrained("tiny_gray")
    assert by_name.state_dict().keys() == loaded.state_dict().keys()


def test_pretrained_rejects_overrides_and_unknown_names(stand_in):
    with pytest.raises(ValueError, match="drop the overrides"):
        create_model("tiny_gray", pretrained=True, dims=(4, 4, 4, 4))
    with pytest.raises(ValueError, match="did you mean"):
        create_model("tiny_grey", pretrained=True)
    with pytest.raises(ValueError, match="pretrained=True"):
        create_model("tiny_gray")
    with pytest.raises(FileNotFoundError, match="treeattn list --pretrained"):
        from_pretrained("no_such_model_or_folder")


def test_info_and_cli_listing_show_benchmark_numbers(stand_in, capsys):
    info = pretrained_info("tiny_gray")
    assert info.scores() == {
        ("Set12", 25.0): (30.1, 0.86),
        ("Set12", 50.0): (27.0, 0.77),
        ("Urban100", 25.0): (28.5, 0.84),
    }
    assert info.image_counts() == {"Urban100": 20}
    assert cli_main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert "tiny_gray: stand-in gray model" in out
    assert "Set12 σ=25: 30.10 dB / SSIM 0.8600 (BM3D 29.90 dB, DnCNN-S 30.40 dB)" in out
    assert "Set12 σ=50: 27.00 dB / SSIM 0.7700\n" in out  # no peer scored there
    assert "Urban100 (20 images) σ=25: 28.50 dB / SSIM 0.8400 (BM3D 28.00 dB)" in out
    assert cli_main(["list", "--pretrained", "*color*"]) == 1


def test_a_blind_gray_denoiser_is_shipped():
    assert "hiir_dn_gray_cpu" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_metadata_and_size(name):
    info = pretrained_info(name)
    assert (info.path / "model.safetensors").stat().st_size <= 20 * 2**20
    assert (info.path / "README.md").is_file()
    assert (info.path / "curves.png").is_file()
    model = create_model(name, pretrained=True)
    assert model.meta.task == "denoise"
    assert (model.meta.in_chans, model.meta.out_chans) == (1, 1)
    record = model.provenance
    assert (record.task, record.degradation, record.level_name) == ("denoise", "awgn", "sigma")
    assert list(record.level) == info.benchmark["sigma_range"] == [0, 50]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_benchmark_is_above_bm3d_on_set12_and_bsd68(name):
    """The committed benchmark of a shipped model scores one forward pass on every row BM3D has
    (Set12 and BSD68 at σ 15/25/50 at least) and the ×8 self-ensemble on some of the same images;
    on Set12 and BSD68 the best mode scored is above BM3D in every row (no model that loses there
    is shipped; the model card says which mode the claim needs). Other sets (Urban100) are
    reported as measured, BM3D ahead or not."""
    info = pretrained_info(name)
    bm3d = info.scores("bm3d")
    plain, ensemble = info.scores("treeattn"), info.scores("treeattn_x8")
    expected = {(s, float(v)) for s in ("Set12", "BSD68") for v in (15, 25, 50)}
    assert set(plain) == set(bm3d) >= expected
    assert set(ensemble) <= set(bm3d)
    for key in expected:
        assert max(mode[key][0] for mode in (plain, ensemble) if key in mode) > bm3d[key][0], key


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("sigma", [15, 50])
def test_shipped_model_denoises_an_embedded_crop(name, sigma, tmp_path):
    """A sanity check, not the benchmark: a clear PSNR gain over the noisy input."""
    from treeattn.data.io import list_images, read_image, write_image

    crop = read_image(list_images(embedded.test_dir(color=False))[0], channels=1)[:, :96, :80]
    write_image(tmp_path / "crop.png", crop)
    model = create_model(name, pretrained=True)
    table = evaluate_folder(
        model,
        tmp_path,
        degradation=build_degradation("awgn", sigma=sigma),
        protocol="denoise",
        channels=1,
    )
    assert table.mean["psnr"] > table.mean["input_psnr"] + 5.0


def test_restore_command_takes_a_shipped_name(stand_in, tmp_path):
    from treeattn.data.io import read_image, write_image

    noisy = torch.rand(1, 20, 28)
    write_image(tmp_path / "in" / "photo.png", noisy)
    code = cli_main(["restore", "tiny_gray", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert code == 0
    restored = read_image(tmp_path / "out" / "photo.png", channels=1)
    with torch.no_grad():
        expected = stand_in.eval()(read_image(tmp_path / "in" / "photo.png", channels=1)[None])
    torch.testing.assert_close(restored, expected[0].clamp(0, 1), atol=1 / 255, rtol=0)


def test_a_class_method_given_a_shipped_name_points_to_load_model(stand_in):
    """A model class loads folders only (it knows no names); the error names the loader that does,
    and that loader returns the model of the class asked for."""
    with pytest.raises(FileNotFoundError, match=r"treeattn\.load_model\('tiny_gray'\)"):
        HiIRUNet.from_pretrained("tiny_gray")
    loaded = treeattn.load_model("tiny_gray")
    assert type(loaded) is HiIRUNet and loaded.meta.name == stand_in.meta.name
