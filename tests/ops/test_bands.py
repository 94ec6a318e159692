"""Band-wise execution ops: padded-grid gathers, tile shapes, exact tiled application, settings."""

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import treeattn.ops.bands as bands
from treeattn.ops.bands import (
    BandSettings,
    BandWise,
    apply_on_grid,
    apply_with_halo,
    band_execution,
    band_settings,
    band_wise,
    bands_wanted,
    tile_shape,
)
from treeattn.ops.padding import crop_to, pad_to_multiple, padded_index


@given(size=st.integers(1, 40), multiple=st.integers(1, 16), offset=st.integers(0, 15))
def test_padded_index_gathers_exactly_what_pad_to_multiple_pads(size, multiple, offset):
    x = torch.randn(1, 1, size, 3)
    padded, _ = pad_to_multiple(x, (multiple, 1), offset=(offset, 0))
    gathered = x.index_select(2, padded_index(size, multiple, offset=offset))
    assert torch.equal(gathered, padded)


@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    block=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    target=st.integers(1, 20000),
)
def test_tile_shape_is_whole_blocks_inside_the_map(height, width, block, target):
    th, tw = tile_shape(height, width, block, target)
    assert th % block[0] == 0 and tw % block[1] == 0
    assert block[0] <= th <= max(block[0], -(-height // block[0]) * block[0])
    assert block[1] <= tw <= max(block[1], -(-width // block[1]) * block[1])
    # Never more than the target, unless one block (or one block row of the tile) already is.
    assert th * tw <= target or th == block[0]


def _block_mixer(block: tuple[int, int]):
    """A block-local function that still mixes every pixel of a block with every other."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        pattern = "b (n1 p1) (n2 p2) c -> b n1 n2 c"
        means = reduce(x, pattern, "mean", p1=block[0], p2=block[1])
        spread = repeat(means, "b n1 n2 c -> b (n1 p1) (n2 p2) c", p1=block[0], p2=block[1])
        return torch.cat([x * spread, spread.flip(-1)], dim=-1)

    return fn


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 30),
    width=st.integers(1, 30),
    block=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    shift=st.booleans(),
    tile_pixels=st.integers(1, 300),
)
def test_apply_on_grid_equals_padding_the_whole_map(height, width, block, shift, tile_pixels):
    x = torch.randn(2, height, width, 3, dtype=torch.float64)
    offset = (block[0] // 2, block[1] // 2) if shift else (0, 0)
    fn = _block_mixer(block)
    padded, size = pad_to_multiple(x, block, offset=offset, data_format="BHWC")
    whole = crop_to(fn(padded), size, offset=offset, data_format="BHWC")
    tiled = apply_on_grid(fn, x, multiple=block, offset=offset, tile_pixels=tile_pixels)
    assert tiled.shape == (2, height, width, 6)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 30),
    width=st.integers(1, 30),
    reach=st.integers(0, 2),
    tile_pixels=st.integers(1, 200),
)
def test_apply_with_halo_equals_a_zero_padded_convolution(height, width, reach, tile_pixels):
    torch.manual_seed(0)
    x = torch.randn(1, height, width, 2, dtype=torch.float64)
    weight = torch.randn(4, 2, 2 * reach + 1, 2 * reach + 1, dtype=torch.float64)

    def conv(t: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(rearrange(t, "b h w c -> b c h w"), weight, padding=reach)
        return rearrange(y, "b c h w -> b h w c")

    tiled = apply_with_halo(conv, x, reach=reach, tile_pixels=tile_pixels)
    torch.testing.assert_close(tiled, conv(x), rtol=0, atol=1e-12)


def test_a_halo_smaller_than_the_reach_is_wrong():
    # The check above is not vacuous: a 3×3 conv run without its halo differs at tile seams.
    x = torch.randn(1, 20, 20, 1, dtype=torch.float64)
    weight = torch.randn(1, 1, 3, 3, dtype=torch.float64)

    def conv(t: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(rearrange(t, "b h w c -> b c h w"), weight, padding=1)
        return rearrange(y, "b c h w -> b h w c")

    assert not torch.allclose(apply_with_halo(conv, x, reach=0, tile_pixels=25), conv(x))


class _BandWiseIdentity(nn.Identity, BandWise):
    """A module with a band-wise path (what the attention, FFN and residual modules are)."""


def test_bands_are_for_large_inference_maps_only():
    module = _BandWiseIdentity()
    with band_wise(module, BandSettings(min_pixels=100, tile_pixels=50)):
        with torch.no_grad():
            assert not bands_wanted(module.train(), 20, 20)
            assert bands_wanted(module.eval(), 20, 20)
            assert not bands_wanted(module, 9, 11)  # below min_pixels
        assert not bands_wanted(module, 20, 20)  # autograd on
    with torch.no_grad(), band_wise(module, BandSettings(min_pixels=0, tile_pixels=400)):
        assert not bands_wanted(module, 20, 20)  # fits one tile
        with band_wise(module, BandSettings(enabled=False)):
            assert not bands_wanted(module, 100, 100)
        assert bands_wanted(module, 100, 100)  # the outer block's settings are back


def test_only_a_band_wise_block_switches_bands_on():
    """A plain call never runs band-wise, whatever the settings in force say."""
    module = _BandWiseIdentity().eval()
    with torch.no_grad(), band_execution(min_pixels=0, tile_pixels=4):
        assert not bands_wanted(module, 100, 100)
        assert not bands_wanted(nn.Identity(), 100, 100)  # no band-wise path at all
        with band_wise(nn.Sequential(module)) as installed:  # submodules take part
            assert installed == band_settings() and module.band_plan == installed
            assert bands_wanted(module, 100, 100)
    assert module.band_plan is None


def test_band_wise_takes_its_settings_off_whatever_happens():
    module = _BandWiseIdentity()
    with pytest.raises(RuntimeError, match="inside"), band_wise(module, BandSettings()):
        raise RuntimeError("inside")
    assert module.band_plan is None


def test_band_execution_nests_and_restores():
    before = band_settings()
    with band_execution(min_pixels=7) as outer:
        with band_execution(tile_pixels=9) as inner:
            assert inner == BandSettings(min_pixels=7, tile_pixels=9)
        assert band_settings() == outer
    assert band_settings() == before


@pytest.mark.parametrize(
    ("options", "match"),
    [({"min_pixels": -1}, "min_pixels"), ({"tile_pixels": 0}, "tile_pixels")],
)
def test_bad_band_settings_name_the_argument(options, match):
    with pytest.raises(ValueError, match=match), band_execution(**options):
        pass


def test_negative_reach_is_refused():
    with pytest.raises(ValueError, match="reach"):
        apply_with_halo(lambda t: t, torch.zeros(1, 4, 4, 1), reach=-1)


@pytest.mark.parametrize(
    ("size", "block", "offset", "gathering"),
    [
        (64, 16, 0, []),  # aligned: every tile is a plain slice of the map
        (70, 16, 0, [2]),  # bottom pad: only the last tile gathers
        (64, 16, 8, [0, 2]),  # shifted: the first tile and the last
    ],
)
def test_tiles_gather_only_where_the_grid_is_padded(size, block, offset, gathering):
    spans = bands._grid_spans(size, block, offset, 32)
    assert [i for i, span in enumerate(spans) if span.gather is not None] == gathering
    assert all(span.read.stop - span.read.start <= 32 for span in spans)  # never the whole axis


def test_apply_on_grid_reads_strided_maps():
    # A map stored channels-first, seen channels-last (what a layer gets from a BCHW model).
    x = rearrange(torch.randn(2, 3, 37, 29, dtype=torch.float64), "b c h w -> b h w c")
    fn = _block_mixer((4, 4))
    contiguous = apply_on_grid(fn, x.contiguous(), multiple=(4, 4), offset=(2, 2), tile_pixels=64)
    strided = apply_on_grid(fn, x, multiple=(4, 4), offset=(2, 2), tile_pixels=64)
    assert torch.equal(strided, contiguous)
