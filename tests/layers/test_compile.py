"""torch.compile smoke test (dynamic shapes) of one HiIRLayer."""

import pytest
import torch

from treeattn import HiIRLayer


@pytest.mark.slow
def test_compiled_layer_matches_eager_on_two_sizes():
    torch.manual_seed(0)
    layer = HiIRLayer(16, 2, (4, 8)).eval()
    compiled = torch.compile(layer, dynamic=True)
    with torch.no_grad():
        for shape in [(2, 16, 13, 21), (2, 16, 11, 19)]:
            x = torch.randn(shape)
            torch.testing.assert_close(compiled(x), layer(x), atol=1e-5, rtol=1e-4)
