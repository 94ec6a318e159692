"""Parameter counts per component, MACs and activation memory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from treeattn.analysis import (
    count_macs,
    count_parameters,
    parameters_by_child,
    parameters_by_component,
    peak_activation_memory,
)
from treeattn.models import create_model

_TINY = {"dim": 8, "depths": (1,), "num_heads": 2, "upsampler_dim": 8, "patch_sizes": (2, 4)}


def test_component_counts_of_hiir_b_follow_the_layer_formula():
    model = create_model("hiir_b_sr_x2", device="meta")
    c, h, layers = 180, 6, 36
    parts = parameters_by_component(model)
    assert parts["attention"] == layers * (2 * (2 * c * c + 2 * c) + c * c + c)
    assert parts["position bias"] == layers * 2 * (2 * 512 + 512 + 512 * h)
    assert parts["FFN"] == layers * (6 * c * c + 25 * c)
    assert parts["norm"] == (2 * layers + 2) * 2 * c
    assert (
        sum(parts.values()) == count_parameters(model) == sum(parameters_by_child(model).values())
    )


def test_swin_components_are_classified():
    parts = parameters_by_component(
        create_model(
            "swin_sr_tiny_x2", dim=8, depths=(1,), num_heads=2, upsampler_dim=8, window_size=4
        )
    )
    assert {"attention", "position bias", "FFN", "norm", "stage end", "convs"} == set(parts)


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(rearrange(x, "b c h w -> b (h w) c"))


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = rearrange(x, "b c h w -> b 1 (h w) c")  # one head
        return F.scaled_dot_product_attention(tokens, tokens, tokens)


def test_macs_are_half_the_flops_of_matmuls():
    report = count_macs(_Linear(), (4, 6), in_chans=3, batch=2)
    assert report.total == 2 * 24 * 3 * 5
    assert report.input_shape == (2, 3, 4, 6)
    assert report.by_module == {"fc": report.total}


def test_macs_count_attention():
    report = count_macs(_Attention(), (4, 4), in_chans=8)
    assert report.total == 2 * 16 * 16 * 8  # q·kᵀ and attn·v, 16 tokens of 8 channels


def test_macs_scale_with_area_and_split_by_module():
    model = create_model("hiir_sr_tiny_x2", device="meta", backend="math", **_TINY)
    one, two, three = (count_macs(model, (8, 8 * k), in_chans=3).total for k in (1, 2, 3))
    # Affine in the pixel count: per-pixel work plus the position-bias MLPs (once per forward).
    assert three - two == two - one > 0
    assert 0 < 2 * one - two < one // 10
    report = count_macs(model, (8, 8), in_chans=3)
    assert sum(report.by_module.values()) == report.total
    assert sum(report.by_operator.values()) == report.total


def test_sdpa_backend_counts_padded_qk():
    math = count_macs(create_model("hiir_sr_tiny_x2", backend="math", **_TINY), (8, 8), in_chans=3)
    sdpa = count_macs(create_model("hiir_sr_tiny_x2", backend="sdpa", **_TINY), (8, 8), in_chans=3)
    assert sdpa.by_operator["bmm"] > math.by_operator["bmm"]


def test_peak_memory_of_a_known_chain():
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 1000), nn.ReLU(), nn.Linear(1000, 8))
    # Linear output and ReLU output (4 × 1000 float32 each) are alive together at the peak.
    assert peak_activation_memory(model, (2, 2), in_chans=2, batch=4) == 2 * 4 * 1000 * 4


def test_peak_memory_grows_with_batch_and_with_autograd():
    torch.manual_seed(0)
    model = create_model("hiir_sr_tiny_x2", **_TINY).eval()
    one = peak_activation_memory(model, (16, 16), in_chans=3)
    two = peak_activation_memory(model, (16, 16), in_chans=3, batch=2)
    train = peak_activation_memory(model, (16, 16), in_chans=3, grad=True)
    assert 1.5 * one < two <= 2 * one + 4096  # per-sample tensors double; shared biases do not
    assert train > one


@pytest.mark.parametrize("func", [count_macs, peak_activation_memory])
def test_sizes_must_be_positive(func):
    with pytest.raises(ValueError, match="must be positive"):
        func(_Linear(), (0, 4), in_chans=3)


def test_macs_by_module_cover_the_u_shape_stage_lists():
    model = create_model("hiir_unet_tiny", device="meta", backend="math")
    report = count_macs(model, (32, 32), in_chans=3)
    assert sum(report.by_module.values()) == report.total
    assert {"encoders.0", "downs.0", "latent", "ups.0", "decoders.0"} <= set(report.by_module)


def test_tracker_follows_a_backward_that_builds_a_sparse_tensor():
    """The position-bias gradient is a sparse one-hot product (treeattn.ops.gather): the tracker
    counts the dense tensors it is made of and passes over the sparse one."""
    from treeattn.analysis.memory import LiveTensorTracker
    from treeattn.layers.pos_bias import ContinuousPositionBias

    bias = ContinuousPositionBias((4, 4), 2)
    tracker = LiveTensorTracker(ignore=list(bias.parameters()))
    with tracker:
        bias().square().sum().backward()
    assert tracker.peak >= 2 * 16 * 16 * 4  # at least the (1, 2, 16, 16) float32 bias
