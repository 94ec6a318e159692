"""Tests generated from the registry: every registered model, at tiny width."""

from __future__ import annotations

import pytest
import torch

from treeattn.models import UNetConfig, create_model, from_pretrained, list_models, model_config

ALL = list_models()


def _input(model, size, *, batch=1, dtype=torch.float32):
    torch.manual_seed(0)
    return torch.rand(batch, model.meta.in_chans, *size, dtype=dtype)


@pytest.mark.parametrize("name", ALL)
def test_forward_any_size(name, make_tiny):
    model = make_tiny(name).eval()
    scale = model.meta.scale
    for size in [(11, 7), (3, 5)]:  # odd, and smaller than any block or the model's multiple
        with torch.no_grad():
            out = model(_input(model, size, batch=2))
        assert out.shape == (2, model.meta.out_chans, size[0] * scale, size[1] * scale)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_backward_reaches_every_parameter(name, make_tiny):
    model = make_tiny(name, drop_path=0.1).train()
    x = _input(model, (9, 6)).requires_grad_(True)
    model(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(param.grad).all(), pname


@pytest.mark.parametrize("name", ALL)
def test_save_load_round_trip(name, make_tiny, tmp_path):
    model = make_tiny(name).eval()
    x = _input(model, (10, 7))
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert loaded.meta == model.meta
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("name", ALL)
def test_bf16_claim_holds(name, make_tiny):
    model = make_tiny(name).eval()
    assert model.meta.supports_bf16 and not model.meta.supports_fp16
    x = _input(model, (8, 8))
    with torch.no_grad():
        ref = model(x)
        out = model.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    error = (out.float() - ref).abs().max() / ref.abs().max()
    assert error < 0.05, f"bf16 differs from fp32 by {error:.3f} of the output range"


@pytest.mark.parametrize("name", ALL)
def test_full_width_runs_with_one_layer_per_stage(name):
    """Widths, heads and trees exactly as registered (only the depths cut to one layer)."""
    config = model_config(name)
    if isinstance(config, UNetConfig):
        depths = {"depths": (1,) * len(config.dims), "decoder_depths": (1,) * len(config.dims[1:])}
    else:
        depths = {"depths": (1,)}
    model = create_model(name, **depths).eval()
    with torch.no_grad():
        out = model(_input(model, (12, 9)))
    assert out.shape == (1, config.out_chans, 12 * model.meta.scale, 9 * model.meta.scale)
