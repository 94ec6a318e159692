"""Position biases are computed once per band-wise pass, are never stale, and keep gradients."""

from __future__ import annotations

import pytest
import torch

import treeattn.layers.pos_bias as pos_bias_module
from treeattn import HiIRLayer
from treeattn.layers.pos_bias import ContinuousPositionBias, TablePositionBias
from treeattn.ops.bands import BandSettings, band_wise
from treeattn.ops.memo import pass_cache, reuse

SIZE = (45, 70)


def _layer(pos_bias: str = "cpb", seed: int = 0) -> HiIRLayer:
    torch.manual_seed(seed)
    return HiIRLayer(16, 2, (4, 16), pos_bias=pos_bias, shift=True).eval()


def _banded(layer: HiIRLayer, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), band_wise(layer, BandSettings(min_pixels=0, tile_pixels=16 * 16)):
        return layer(x)


def _uncached(layer: HiIRLayer, x: torch.Tensor, monkeypatch) -> torch.Tensor:
    """The band-wise output with every tile computing its own bias (the behaviour before)."""
    with monkeypatch.context() as patch:
        patch.setattr(pos_bias_module, "reuse", lambda owner, compute: compute())
        return _banded(layer, x)


def _bias_modules(layer: HiIRLayer) -> list[torch.nn.Module]:
    kinds = (ContinuousPositionBias, TablePositionBias)
    return [m for m in layer.modules() if isinstance(m, kinds)]


@pytest.mark.parametrize("pos_bias", ["cpb", "table"])
def test_one_bias_per_level_per_pass_with_the_uncached_output(pos_bias, monkeypatch):
    layer = _layer(pos_bias)
    x = torch.randn(2, 16, *SIZE)
    computed = []
    for module in _bias_modules(layer):
        real = module._bias
        monkeypatch.setattr(module, "_bias", lambda real=real: computed.append(1) or real())
    banded = _banded(layer, x)
    assert len(computed) == 2  # one per tree level, for the whole pass
    computed.clear()
    uncached = _uncached(layer, x, monkeypatch)
    assert len(computed) > 8  # one per tile and level: the passes had many tiles
    torch.testing.assert_close(banded, uncached, rtol=0, atol=1e-6)


def _load_other_weights(layer: HiIRLayer, x: torch.Tensor) -> tuple[HiIRLayer, torch.Tensor]:
    layer.load_state_dict(_layer(seed=1).state_dict())
    return layer, x


def _optimizer_step(layer: HiIRLayer, x: torch.Tensor) -> tuple[HiIRLayer, torch.Tensor]:
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer.train()
    layer(x).square().mean().backward()
    optimizer.step()
    return layer.eval(), x


def _edit_in_place(layer: HiIRLayer, x: torch.Tensor) -> tuple[HiIRLayer, torch.Tensor]:
    # Through .data, which bumps no version counter: the pass-scoped store needs none.
    for module in _bias_modules(layer):
        for parameter in module.parameters():
            parameter.data.mul_(-2.0)
    return layer, x


@pytest.mark.parametrize("change", [_load_other_weights, _optimizer_step, _edit_in_place])
def test_the_bias_follows_every_change_of_the_parameters(change, monkeypatch):
    layer = _layer()
    x = torch.randn(1, 16, *SIZE)
    before = _banded(layer, x)
    layer, x = change(layer, x)
    after = _banded(layer, x)
    assert (after - before).abs().max() > 1e-5  # the change shows beyond the tolerance below
    torch.testing.assert_close(after, _uncached(layer, x, monkeypatch), rtol=0, atol=1e-6)


def test_the_bias_follows_a_dtype_change(monkeypatch):
    layer = _layer()
    x = torch.randn(1, 16, *SIZE, dtype=torch.float64)
    _banded(layer, x)  # a float32 pass first
    layer.to(torch.float64)
    after = _banded(layer, x)
    # A float32 bias kept from the first pass would be off by ~1e-7 here.
    torch.testing.assert_close(after, _uncached(layer, x, monkeypatch), rtol=0, atol=1e-12)


def test_nothing_is_kept_while_autograd_records():
    module = ContinuousPositionBias((4, 4), 2)
    with pass_cache():
        first, second = module(), module()
    assert first is not second and first.grad_fn is not None
    (first.sum() + second.sum()).backward()
    twice = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    module().sum().backward()
    for grad_twice, parameter in zip(twice, module.parameters(), strict=True):
        torch.testing.assert_close(grad_twice, 2 * parameter.grad)


def test_reuse_keeps_values_only_inside_a_pass():
    calls = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return torch.ones(1)

    owner = object()
    with torch.no_grad():
        reuse(owner, compute)
        reuse(owner, compute)
        assert len(calls) == 2  # no pass open: computed every time
        with pass_cache():
            value = reuse(owner, compute)
            with pass_cache():  # nested: the outer pass's store
                assert reuse(owner, compute) is value
            assert reuse(object(), compute) is not value  # another owner
        assert len(calls) == 4
        with pass_cache():
            assert reuse(owner, compute) is not value  # a new pass computes afresh
    assert len(calls) == 5


@pytest.mark.parametrize("kind", [ContinuousPositionBias, TablePositionBias])
def test_reuse_leaves_a_compiled_graph_whole(kind):
    """Under torch.compile the bias is computed in the graph: no graph break (fullgraph), even
    inside an open pass."""
    module = kind((4, 4), 2)
    compiled = torch.compile(module, backend="eager", fullgraph=True)
    with torch.no_grad(), pass_cache():
        torch.testing.assert_close(compiled(), module())
