"""FFN parameters get gradients in their own layout (what DDP's gradient buckets need)."""

import pytest
import torch

from treeattn import HiIRLayer


@pytest.mark.parametrize("ffn_type", ["gated_dwconv", "leff"])
@pytest.mark.parametrize("data_format", ["BCHW", "BHWC"])
def test_every_gradient_has_its_parameters_strides(ffn_type, data_format):
    layer = HiIRLayer(16, 2, (4, 8), ffn_type=ffn_type, data_format=data_format)
    shape = (1, 16, 12, 10) if data_format == "BCHW" else (1, 12, 10, 16)
    layer(torch.randn(shape)).square().mean().backward()
    for name, param in layer.named_parameters():
        assert param.grad.stride() == param.stride(), name
