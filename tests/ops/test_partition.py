"""Property tests of the tree partition ops."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from treeattn.ops.partition import (
    level_geometry,
    normalize_patch_sizes,
    tree_partition,
    tree_regroup,
    tree_reverse,
)


@st.composite
def trees(draw, max_depth: int = 3, min_depth: int = 1):
    """Random nested trees: per-level (h, w) growth factors, optionally rectangular."""
    depth = draw(st.integers(min_depth, max_depth))
    square = draw(st.booleans())
    sizes, h, w = [], 1, 1
    for _ in range(depth):
        fh = draw(st.integers(1, 3))
        fw = fh if square else draw(st.integers(1, 3))
        if fh == fw == 1:
            fh = 2
            fw = 2 if square else fw
        h, w = h * fh, w * fw
        sizes.append(h if square and h == w else (h, w))
    return tuple(sizes)


@given(
    tree=trees(),
    batch=st.integers(1, 2),
    channels=st.integers(1, 5),
    blocks=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    data=st.data(),
)
def test_partition_then_reverse_is_identity(tree, batch, channels, blocks, data):
    sizes = normalize_patch_sizes(tree)
    top = sizes[-1]
    height, width = top[0] * blocks[0], top[1] * blocks[1]
    x = torch.randn(batch, height, width, channels)
    level = data.draw(st.integers(0, len(sizes) - 1))
    geometry = level_geometry(sizes, level)
    windows = tree_partition(x, geometry)
    assert windows.shape[1] == geometry.tokens
    assert windows.shape[0] * windows.shape[1] == batch * height * width
    assert torch.equal(tree_reverse(windows, geometry, height=height, width=width), x)


@given(tree=trees(), heads=st.integers(1, 3), head_dim=st.integers(1, 3), data=st.data())
def test_partition_with_heads_matches_plain_partition(tree, heads, head_dim, data):
    sizes = normalize_patch_sizes(tree)
    height, width = sizes[-1]
    x = torch.randn(1, height, width, heads * head_dim)
    geometry = level_geometry(sizes, data.draw(st.integers(0, len(sizes) - 1)))
    with_heads = tree_partition(x, geometry, num_heads=heads)
    plain = tree_partition(x, geometry)
    assert torch.equal(with_heads.transpose(1, 2).flatten(2), plain)
    assert torch.equal(tree_reverse(with_heads, geometry, height=height, width=width), x)


@given(tree=trees(), data=st.data())
def test_windows_hold_the_stride_grid_of_one_block(tree, data):
    """Each window of level k = the tokens at stride s[k-1] sharing one offset in one block s[k]."""
    sizes = normalize_patch_sizes(tree)
    level = data.draw(st.integers(0, len(sizes) - 1))
    geometry = level_geometry(sizes, level)
    height, width = sizes[-1][0] * 2, sizes[-1][1]
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords = torch.stack([rows, cols], dim=-1)[None].float()  # (1, H, W, 2)
    windows = tree_partition(coords, geometry).long()  # (n, T, 2)
    (bh, bw), (sh, sw) = geometry.block, geometry.stride
    for window in windows:
        r, c = window[:, 0], window[:, 1]
        assert len(set((r // bh).tolist())) == 1 and len(set((c // bw).tolist())) == 1
        assert len(set((r % sh).tolist())) == 1 and len(set((c % sw).tolist())) == 1
        assert len({(a, b) for a, b in zip(r.tolist(), c.tolist(), strict=True)}) == len(r)


def test_geometry_of_the_default_tree():
    l1, l2 = level_geometry((16, 64), 0), level_geometry((16, 64), 1)
    assert (l1.stride, l1.group, l1.block) == ((1, 1), (16, 16), (16, 16))
    assert (l2.stride, l2.group, l2.block) == ((16, 16), (4, 4), (64, 64))


@pytest.mark.parametrize(
    "bad", [(), (16, 24), (64, 16), (0,), ((8, 16), (8, 16)), (16.0,), "16", ((8, 8, 8),)]
)
def test_sizes_that_do_not_nest_are_rejected(bad):
    with pytest.raises(ValueError, match="patch_sizes"):
        normalize_patch_sizes(bad)


def test_unaligned_map_names_the_fix():
    with pytest.raises(ValueError, match="pad_to_multiple"):
        tree_partition(torch.zeros(1, 20, 16, 3), level_geometry((4, 16), 1))


@given(
    tree=trees(min_depth=2),
    heads=st.integers(1, 3),
    head_dim=st.integers(1, 3),
    blocks=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    data=st.data(),
)
def test_regroup_equals_reverse_then_partition(tree, heads, head_dim, blocks, data):
    sizes = normalize_patch_sizes(tree)
    level = data.draw(st.integers(0, len(sizes) - 2))
    here, there = level_geometry(sizes, level), level_geometry(sizes, level + 1)
    height, width = sizes[-1][0] * blocks[0], sizes[-1][1] * blocks[1]
    x = torch.randn(2, height, width, heads * head_dim)
    windows = tree_partition(x, here, num_heads=heads)
    regrouped = tree_regroup(windows, here, there, height=height, width=width)
    map_between = tree_reverse(windows, here, height=height, width=width)
    assert torch.equal(regrouped, tree_partition(map_between, there))
    assert torch.equal(regrouped, tree_partition(x, there))


def test_regroup_needs_consecutive_levels():
    sizes = normalize_patch_sizes((2, 4, 8))
    windows = tree_partition(torch.zeros(1, 8, 8, 2), level_geometry(sizes, 0), num_heads=1)
    with pytest.raises(ValueError, match="consecutive tree levels"):
        tree_regroup(windows, level_geometry(sizes, 0), level_geometry(sizes, 2), height=8, width=8)
