"""Tests for treeattn.ops.tiling: coverage, blending weights and exactness against whole images."""

import itertools

import pytest
import torch
from torch import nn

from treeattn.ops.tiling import blend_weights, check_tile_overlap, tile_starts, tiled_apply


def conv_net(depth: int, *, scale: int = 1) -> nn.Module:
    """A float64 conv net whose receptive-field radius is ``depth`` input pixels."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1), nn.GELU()]
    layers += [nn.Conv2d(8, 3 * scale * scale, 1), nn.PixelShuffle(scale)]
    return nn.Sequential(*layers).double().eval()


@pytest.mark.parametrize(("length", "tile", "overlap"), [(10, 4, 1), (37, 16, 6), (16, 16, 4)])
def test_tile_starts_cover_axis_with_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile=tile, overlap=overlap)
    assert starts[0] == 0
    assert starts[-1] + tile == max(length, tile)
    for a, b in itertools.pairwise(starts):
        assert tile - (b - a) >= overlap


def test_tile_starts_rejects_overlap_not_below_tile() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(40, tile=8, overlap=8)


def test_one_tile_overlap_rule_names_the_callers_arguments() -> None:
    check_tile_overlap(8, 7)
    with pytest.raises(ValueError, match="--tile-overlap 8 must be >= 0 and smaller than --tile 8"):
        check_tile_overlap(8, 8, tile_name="--tile", overlap_name="--tile-overlap")
    with pytest.raises(ValueError, match="overlap=-1 must be >= 0 and smaller than tile=4"):
        tiled_apply(lambda x: x, torch.zeros(1, 1, 8, 8), tile=4, overlap=-1)
    with pytest.raises(TypeError, match=r"tile=2\.0 must be an int"):
        check_tile_overlap(2.0, 0)


def test_blend_weights_fade_only_interior_edges() -> None:
    w = blend_weights((12, 14), start=(0, 4), image=(12, 30), margin=2, blend=4)
    assert torch.all(w[:, -2:] == 0)  # right edge is interior: margin gets no weight
    assert torch.all(w[:, :2] == 0)  # left edge is interior too
    assert torch.all(w[:, 6:8] == 1)  # centre columns untouched
    assert torch.all(w[[0, -1], 6:8] == 1)  # top/bottom are image borders: no fade


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_whole_when_margin_covers_receptive_field(scale: int) -> None:
    depth = 3
    model = conv_net(depth, scale=scale)
    x = torch.rand(2, 3, 45, 38, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = model(x)
        # overlap 2*depth + blend: the margin (overlap - blend) // 2 equals the radius.
        tiled = tiled_apply(model, x, tile=20, overlap=2 * depth + 4, blend=4, scale=scale)
        # blend=1 and overlap = receptive-field width 2*depth+1.
        narrow = tiled_apply(model, x, tile=16, overlap=2 * depth + 1, blend=1, scale=scale)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(narrow, whole, rtol=0, atol=1e-12)


def test_tiled_differs_when_overlap_too_small() -> None:
    model = conv_net(4)
    x = torch.rand(1, 3, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = model(x)
        tiled = tiled_apply(model, x, tile=16, overlap=4, blend=2)
    assert (tiled - whole).abs().max() > 1e-6


def test_small_image_is_processed_whole() -> None:
    calls: list[tuple[int, ...]] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return t * 2

    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(tiled_apply(fn, x, tile=16, overlap=4), x * 2)
    assert calls == [(1, 1, 8, 8)]


def test_wrong_output_size_is_reported() -> None:
    x = torch.rand(1, 1, 20, 20)
    with pytest.raises(ValueError, match="scale"):
        tiled_apply(lambda t: t, x, tile=8, overlap=2, scale=2)
