"""Analytic dependency sets against gradients, and the receptive-field invariants."""

from __future__ import annotations

import pytest
import torch

from treeattn.analysis import (
    analytic_receptive_field,
    dependency_mask,
    effective_receptive_field,
)
from treeattn.models import create_model

_SR = {"dim": 8, "num_heads": 2, "upsampler_dim": 4}
_UNET = {"dims": (4, 8), "depths": (1, 1), "decoder_depths": (1,), "num_heads": (1, 1)}

CASES = {
    "v3": (
        "hiir_sr_tiny_x2",
        {**_SR, "depths": (2,), "patch_sizes": (2, 8), "stage_end": "linear"},
    ),
    "v3 non-square": ("hiir_sr_tiny_x2", {**_SR, "depths": (1,), "patch_sizes": ((2, 4), (4, 8))}),
    "shift": (
        "hiir_sr_tiny_x2_shift",
        {**_SR, "depths": (2,), "patch_sizes": (2, 8), "stage_end": "linear"},
    ),
    "v1": ("hiir_sr_tiny_x2_v1", {**_SR, "depths": (3,), "patch_sizes": (2, 4, 16)}),
    "v2": ("hiir_sr_tiny_x2_v2", {**_SR, "depths": (1,), "patch_sizes": (2, 8)}),
    "v4": ("hiir_sr_tiny_x2_v4", {**_SR, "depths": (1,), "patch_sizes": (2, 4, 8)}),
    "no L3, linear": (
        "hiir_sr_tiny_x2_no_l3",
        {**_SR, "depths": (2,), "patch_sizes": (2, 4), "stage_end": "linear"},
    ),
    "x3": ("hiir_sr_tiny_x3", {**_SR, "depths": (1,), "patch_sizes": (2, 4)}),
    "isolated": (
        "isolated_sr_tiny_x2",
        {**_SR, "depths": (2,), "patch_sizes": (4,), "stage_end": "linear"},
    ),
    "swin": ("swin_sr_tiny_x2", {**_SR, "depths": (3,), "window_size": 4, "stage_end": "linear"}),
    "unet": ("hiir_unet_tiny", {**_UNET, "patch_sizes": ((2, 4), (2, 4)), "stage_end": "linear"}),
    "unet swin": ("swin_unet_tiny", {**_UNET, "window_size": 2, "stage_end": "linear"}),
}


def _generic(name: str, overrides: dict) -> torch.nn.Module:
    """A float64 model with random weights, so no gradient vanishes by accident."""
    torch.manual_seed(0)
    model = create_model(name, dtype=torch.float64, **overrides).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.3)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_dependency_set_equals_gradient_support(case):
    """Exact for any size: padding, shifted grids, odd sizes and borders included."""
    model = _generic(*CASES[case])
    size = (29, 38)
    out_h, out_w = size[0] * model.meta.scale, size[1] * model.meta.scale
    for position in [(0, 0), (out_h // 2, out_w // 2), (out_h - 1, out_w - 1), (5, out_w - 3)]:
        mask = dependency_mask(model, size, position)
        erf = effective_receptive_field(
            model, size, in_chans=model.meta.in_chans, position=position
        )
        assert torch.equal(erf > 0, mask), f"{case} at {position}"
        assert 0 < mask.sum() < mask.numel()  # a real subset, so the comparison means something


def test_tree_invariants_on_aligned_input():
    """Invariant 3 of docs/layers.md: with no convs around, a v3 layer mixes its aligned P-block."""
    model = create_model(
        "hiir_sr_tiny_x2_no_l3",
        device="meta",
        **_SR,
        depths=(1,),
        patch_sizes=(2, 8),
        stage_end="linear",
    )
    mask = dependency_mask(model, (32, 32), (2 * 13, 2 * 21))  # LR pixel (13, 21)
    rows = mask.any(dim=1).nonzero().flatten()
    cols = mask.any(dim=0).nonzero().flatten()
    # Output row 26 reads LR rows 12..13 through the HR conv and shuffle, 10..15 through the two
    # LR upsampler convs: all inside the aligned block 8..15, which the attention mixes fully;
    # the shallow 3×3 conv before it adds one row on each side. Columns: 42 → 18..23 → 16..23.
    assert (rows.min().item(), rows.max().item()) == (8 - 1, 15 + 1)
    assert (cols.min().item(), cols.max().item()) == (16 - 1, 23 + 1)


def test_receptive_field_grows_by_one_region_per_layer():
    """Invariant 5: each extra layer with the 3×3 FFN conv adds a ring of regions."""
    extents = []
    for depth in (1, 2, 3):
        model = create_model(
            "hiir_sr_tiny_x2",
            device="meta",
            **_SR,
            depths=(depth,),
            patch_sizes=(2, 8),
            stage_end="linear",
        )
        extents.append(analytic_receptive_field(model)[0])
    assert extents[1] - extents[0] == 16 and extents[2] - extents[1] == 16


def test_information_flow_ordering_of_the_baselines():
    size = {**_SR, "depths": (2, 2), "stage_end": "linear"}
    hiir = analytic_receptive_field(create_model("hiir_sr_tiny_x2", device="meta", **size))
    isolated = analytic_receptive_field(create_model("isolated_sr_tiny_x2", device="meta", **size))
    no_l3 = analytic_receptive_field(create_model("hiir_sr_tiny_x2_no_l3", device="meta", **size))
    assert isolated[0] < hiir[0] and no_l3[0] < hiir[0]
    assert hiir[0] == hiir[1]


def test_erf_is_normalised_and_centred():
    model = _generic(*CASES["v3"])
    erf = effective_receptive_field(model, (24, 24), in_chans=3, samples=2)
    assert erf.shape == (24, 24) and erf.max() == 1.0 and erf.min() >= 0
    assert erf[12, 12] > 0


def test_bad_arguments():
    model = create_model("hiir_sr_tiny_x2", device="meta", **_SR, depths=(1,))
    with pytest.raises(ValueError, match="outside"):
        dependency_mask(model, (8, 8), (16, 0))
    with pytest.raises(ValueError, match="samples"):
        effective_receptive_field(torch.nn.Conv2d(1, 1, 3), (4, 4), in_chans=1, samples=0)
