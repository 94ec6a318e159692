"""Band-wise model inference equals the whole-image model: columnar and U-shape, odd sizes; only
the runners (banded_forward, the restore runner the engine validates with) run band-wise."""

import pytest
import torch

import treeattn.ops.bands as bands
from treeattn.engine.evaluate import make_restorer
from treeattn.models import banded_forward
from treeattn.ops.bands import band_execution


@pytest.fixture
def band_calls(monkeypatch):
    """Counts calls of the tiled paths of the layers (attention grid and FFN halo)."""
    counts = {"grid": 0, "halo": 0}
    for name, module in [("grid", "treeattn.layers.attention"), ("halo", "treeattn.layers.ffn")]:
        real = getattr(bands, f"apply_{'on_grid' if name == 'grid' else 'with_halo'}")

        def counting(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(f"{module}.{real.__name__}", counting)
    return counts


MODELS = [
    ("hiir_sr_tiny_x2", {}),
    ("hiir_sr_tiny_x2", {"shift": True}),
    ("hiir_sr_tiny_x3", {"shift": True, "ffn_type": "leff"}),
    ("hiir_unet_tiny", {}),
    ("hiir_unet_tiny", {"shift": True, "in_chans": 1, "out_chans": 1}),
]


@pytest.mark.parametrize(("name", "extra"), MODELS, ids=lambda v: str(v))
def test_banded_model_equals_whole_image(name, extra, make_tiny, band_calls):
    torch.manual_seed(0)
    model = make_tiny(name, **extra).eval()
    x = torch.rand(1, model.meta.in_chans, 27, 35)
    with torch.no_grad():
        whole = model(x)
    assert band_calls["grid"] == band_calls["halo"] == 0  # model(x) is plain math
    banded = banded_forward(model, x, min_pixels=0, tile_pixels=48)
    assert band_calls["grid"] > 0 and band_calls["halo"] > 0
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-5)


def test_model_call_is_whole_maps_and_runners_band(make_tiny, band_calls):
    model = make_tiny("hiir_unet_tiny").eval()
    x = torch.rand(1, 3, 24, 24)
    with band_execution(min_pixels=0, tile_pixels=48):
        model(x)
        with torch.no_grad():
            model(x)  # inference too: band-wise is a runner's choice, not model(x)'s
        assert band_calls["grid"] == 0
        banded_forward(model, x)
    assert band_calls["grid"] > 0


def test_engine_evaluation_runs_band_wise(make_tiny, band_calls):
    torch.manual_seed(0)
    model = make_tiny("hiir_sr_tiny_x2", shift=True).eval()
    x = torch.rand(1, 3, 19, 26)
    with torch.no_grad():
        whole = model(x)
    with band_execution(min_pixels=0, tile_pixels=48):
        restored = make_restorer(model, tile=None, overlap=0)(x)
    assert band_calls["grid"] > 0
    torch.testing.assert_close(restored, whole, rtol=0, atol=1e-5)


def test_banded_forward_refuses_a_training_model(make_tiny):
    model = make_tiny("hiir_sr_tiny_x2")
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        banded_forward(model, torch.rand(1, 3, 8, 8))


def test_mac_counts_are_of_whole_maps_whatever_the_band_settings(make_tiny):
    from treeattn.analysis import count_macs

    model = make_tiny("hiir_unet_tiny").eval()
    whole = count_macs(model, (40, 40), in_chans=3).total
    with band_execution(min_pixels=0, tile_pixels=48):
        assert count_macs(model, (40, 40), in_chans=3).total == whole


INFERENCE_CASES = [
    ("hiir_unet_tiny", {"in_chans": 1, "out_chans": 1}, torch.float32, 1e-6),
    ("hiir_unet_tiny", {"shift": True, "pos_bias": "table"}, torch.float64, 1e-12),
    ("hiir_sr_tiny_x2", {"shift": True}, torch.float32, 1e-6),
]


@pytest.mark.parametrize(("name", "extra", "dtype", "atol"), INFERENCE_CASES, ids=str)
def test_inference_equals_the_autograd_path(name, extra, dtype, atol, make_tiny, band_calls):
    """What runs only without autograd — in-place residual and bias adds,
    position biases computed once per band-wise pass, tiles read as views of the map — gives the
    values of the autograd path, which runs none of it."""
    torch.manual_seed(0)
    model = make_tiny(name, dtype=dtype, **extra).eval()
    x = torch.rand(1, model.meta.in_chans, 29, 38, dtype=dtype)
    with band_execution(min_pixels=0, tile_pixels=48):
        reference = model(x).detach()  # autograd on: whole maps, default layout, nothing kept
        assert band_calls["grid"] == 0
        banded = banded_forward(model, x)
        with torch.no_grad():
            whole = model(x)
    assert band_calls["grid"] > 0 and band_calls["halo"] > 0
    # Band-wise maps are channels-last inside, yet the layout of the autograd path comes out.
    assert banded.stride() == whole.stride() == reference.stride()
    torch.testing.assert_close(banded, reference, rtol=0, atol=atol)
    torch.testing.assert_close(whole, reference, rtol=0, atol=atol)
