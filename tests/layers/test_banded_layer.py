"""Band-wise HiIRLayer inference equals the whole-map layer (odd sizes, shifted or not); a plain
call runs whole maps."""

import pytest
import torch

import treeattn.ops.bands as bands
from treeattn import HiIRLayer
from treeattn.ops.bands import BandSettings, band_execution, band_wise


@pytest.fixture
def tile_counter(monkeypatch):
    """Counts the tiles the band-wise paths run (so a test knows bands really ran)."""
    counts = {"tiles": 0}
    real = bands.tile_shape

    def counting(height, width, block, target):
        shape = real(height, width, block, target)
        counts["tiles"] += -(-height // shape[0]) * -(-width // shape[1])
        return shape

    monkeypatch.setattr(bands, "tile_shape", counting)
    return counts


CASES = [
    {},
    {"shift": True},
    {"patch_sizes": ((2, 4), (4, 8)), "shift": True},
    {"variant": "v1", "level": 1, "shift": True},
    {"variant": "v2", "shift": True},
    {"variant": "v4", "patch_sizes": (2, 4, 8), "shift": True},
    {"ffn_type": "leff", "norm": "post"},
    {"ffn_type": "mlp", "attn_type": "cosine", "pos_bias": "table"},
]


@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(map(str, o.items())) or "v3")
@pytest.mark.parametrize("size", [(37, 29), (5, 70), (50, 3), (17, 17)])
def test_banded_layer_equals_whole_map(options, size, tile_counter):
    torch.manual_seed(0)
    layer = HiIRLayer(16, 2, **{"patch_sizes": (4, 16), **options}).eval()
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        whole = layer(x)
        assert tile_counter["tiles"] == 0
        with band_wise(layer, BandSettings(min_pixels=0, tile_pixels=40)):
            banded = layer(x)
    assert tile_counter["tiles"] > 2
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-5)


def test_layer_bands_only_in_inference(tile_counter):
    layer = HiIRLayer(8, 2, (4, 8))
    x = torch.randn(1, 8, 20, 20)
    with band_wise(layer, BandSettings(min_pixels=0, tile_pixels=16)):
        layer(x)  # training mode, autograd on
        with torch.no_grad():
            layer(x)  # still training mode
        assert tile_counter["tiles"] == 0
        with torch.no_grad():
            layer.eval()(x)
    assert tile_counter["tiles"] > 0


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_residual_blocks_run_tile_by_tile(norm):
    """Band-wise, the norms and residual adds see tiles, never the whole map."""
    torch.manual_seed(0)
    layer = HiIRLayer(16, 2, (4, 16), norm=norm, shift=True, data_format="BHWC").eval()
    x = torch.randn(1, 70, 45, 16)
    seen = []
    for module in (layer.attn.norm, layer.ffn.norm):
        module.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1:3]))
    with torch.no_grad():
        whole = layer(x)
        assert seen == [(70, 45), (70, 45)]
        seen.clear()
        with band_wise(layer, BandSettings(min_pixels=0, tile_pixels=16 * 16)):
            banded = layer(x)
    assert len(seen) > 4
    assert all(h * w < 70 * 45 / 2 for h, w in seen)
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-5)


def test_a_plain_call_is_whole_maps_whatever_the_settings(tile_counter):
    """``layer(x)`` is plain math: band settings in force switch nothing on by themselves."""
    layer = HiIRLayer(8, 2, (4, 8)).eval()
    x = torch.randn(1, 8, 20, 20)
    with torch.no_grad(), band_execution(min_pixels=0, tile_pixels=16):
        plain = layer(x)
        assert tile_counter["tiles"] == 0
        with band_wise(layer):  # the settings in force, now installed
            banded = layer(x)
    assert tile_counter["tiles"] > 0
    torch.testing.assert_close(banded, plain, rtol=0, atol=1e-5)
