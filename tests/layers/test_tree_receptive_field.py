"""Receptive-field invariants of the tree, checked exactly with float64 gradients.

The invariants are stated in `docs/layers.md`, "Receptive field (tested exactly)".

For an output pixel (i, j) the dependency set is where ∂out(i, j)/∂in is non-zero. Each expected set
is built here from the tree's geometry alone, independently of the implementation.
"""

import torch
from einops import rearrange
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from treeattn.layers import HiIRLayer, LevelAttention, TreeAttention
from treeattn.layers.residual import PreNormResidual

P1, P2 = 2, 8  # small tree: 2×2 patches inside 8×8 regions (g = 4)
SIZE = 24  # 3×3 regions: interior, edges and corners

pixels = st.tuples(st.integers(0, SIZE - 1), st.integers(0, SIZE - 1))


def dependency(module: nn.Module, pixel: tuple[int, int], *, size: int = SIZE, dim: int = 8):
    """Boolean (H, W) map of input pixels the output at ``pixel`` depends on (BHWC module)."""
    torch.manual_seed(0)
    x = torch.randn(1, size, size, dim, dtype=torch.float64, requires_grad=True)
    out = module(x)
    i, j = pixel
    (grad,) = torch.autograd.grad(out[0, i, j].sum(), x)
    return grad[0].abs().sum(-1) > 0


def block_mask(pixel, block, *, size: int = SIZE, stride: int = 1):
    """Pixels of the aligned ``block`` containing ``pixel`` with the same offset mod ``stride``."""
    rows = torch.arange(size)
    i, j = pixel

    def axis(c):
        return ((rows // block) == c // block) & ((rows % stride) == c % stride)

    return axis(i)[:, None] & axis(j)[None, :]


def regions_of_neighbours(mask: torch.Tensor, region: int) -> torch.Tensor:
    """Union of the aligned regions containing any 3×3 neighbour of a pixel in ``mask``."""
    grown = torch.nn.functional.max_pool2d(mask[None, None].double(), 3, 1, 1)[0, 0] > 0
    n = mask.shape[0] // region
    hit = rearrange(grown, "(n1 r1) (n2 r2) -> n1 n2 (r1 r2)", n1=n, n2=n).any(-1)
    return hit.repeat_interleave(region, 0).repeat_interleave(region, 1)


def tree(sizes, **kw):
    return TreeAttention(8, 2, sizes, dtype=torch.float64, **kw)


@given(pixel=pixels)
def test_level1_alone_sees_its_patch(pixel):
    assert torch.equal(dependency(tree((P1,)), pixel), block_mask(pixel, P1))


@given(pixel=pixels)
def test_level2_alone_sees_the_same_offset_grid_of_its_region(pixel):
    level2 = LevelAttention(8, 2, (P1, P2), level=1, dtype=torch.float64)
    assert torch.equal(dependency(level2, pixel), block_mask(pixel, P2, stride=P1))


@given(pixel=pixels)
def test_attention_sub_block_sees_its_region(pixel):
    block = PreNormResidual(8, tree((P1, P2)), dtype=torch.float64)
    assert torch.equal(dependency(block, pixel), block_mask(pixel, P2))


@given(pixel=pixels, level=st.integers(0, 2))
def test_depth3_tree_after_level_k_sees_block_k(pixel, level):
    sizes = (2, 4, 8)
    got = dependency(tree(sizes[: level + 1]), pixel)
    assert torch.equal(got, block_mask(pixel, sizes[level]))


def _layer(**kw):
    return HiIRLayer(8, 2, (P1, P2), data_format="BHWC", dtype=torch.float64, **kw)


@given(pixel=pixels)
def test_full_layer_sees_regions_of_its_3x3_neighbours(pixel):
    point = block_mask(pixel, 1)
    assert torch.equal(dependency(_layer(), pixel), regions_of_neighbours(point, P2))


@given(pixel=pixels)
def test_two_stacked_layers_grow_by_one_region_ring(pixel):
    torch.manual_seed(1)
    stacked = nn.Sequential(_layer(), _layer())
    once = regions_of_neighbours(block_mask(pixel, 1), P2)
    twice = regions_of_neighbours(once, P2)
    assert torch.equal(dependency(stacked, pixel), twice)
    assert not torch.equal(once, twice)


@given(pixel=pixels)
def test_v1_pair_reproduces_the_region(pixel):
    pair = nn.Sequential(
        PreNormResidual(
            8, LevelAttention(8, 2, (P1, P2), level=0, dtype=torch.float64), dtype=torch.float64
        ),
        PreNormResidual(
            8, LevelAttention(8, 2, (P1, P2), level=1, dtype=torch.float64), dtype=torch.float64
        ),
    )
    assert torch.equal(dependency(pair, pixel), block_mask(pixel, P2))
