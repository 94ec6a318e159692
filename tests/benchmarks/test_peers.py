"""``benchmarks/peers.py``: the DnCNN-S loader is strict, and the real weights denoise."""

from __future__ import annotations

import pytest
import torch
from bench_scripts import load_benchmark
from safetensors.torch import save_file

from treeattn.data import embedded
from treeattn.data.io import list_images, read_image
from treeattn.metrics import psnr

peers = load_benchmark("peers")


def _release(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state dict stored as the authors' release is: without ``num_batches_tracked``."""
    return {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("shape", [{}, {"width": 8, "depth": 5}])
def test_random_weights_load_and_the_net_subtracts_the_predicted_noise(tmp_path, shape):
    torch.manual_seed(0)
    source = peers.DnCNN(**shape)
    for module in source.modules():  # running statistics that differ from a fresh network's
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    save_file(_release(source), tmp_path / "model.safetensors")
    net = peers.load_dncnn(tmp_path / "model.safetensors")
    assert not net.training and len(net.dncnn) == len(source.dncnn)
    for key, value in _release(source).items():
        assert torch.equal(net.state_dict()[key], value), key
    x = torch.rand(1, 1, 24, 20)
    with torch.no_grad():
        assert torch.allclose(net(x), x - source.eval().dncnn(x), atol=1e-6)


@pytest.mark.parametrize("change", ["missing", "unexpected", "shape"])
def test_weights_that_do_not_fit_are_refused(tmp_path, change):
    weights = _release(peers.DnCNN())
    if change == "missing":
        del weights["dncnn.5.weight"]
    elif change == "unexpected":
        weights["dncnn.47.bias"] = torch.zeros(1)
    else:
        weights["dncnn.47.weight"] = torch.zeros(3, 64, 3, 3)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(RuntimeError, match="dncnn"):
        peers.load_dncnn(tmp_path / "model.safetensors")


def test_missing_weights_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.safetensors"):
        peers.load_dncnn(tmp_path / "nowhere.safetensors")


@pytest.mark.skipif(not peers.DNCNN_S25.is_file(), reason="../shared/models/dncnn_s25 is absent")
def test_the_published_dncnn_s25_loads_strictly_and_denoises_a_crop():
    net = peers.load_dncnn(peers.DNCNN_S25)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 556_096
    gt = read_image(list_images(embedded.test_dir(color=False))[0], channels=1)[None, :, :96, :96]
    noise = torch.randn(gt.shape, generator=torch.Generator().manual_seed(0))
    noisy = gt + peers.DNCNN_SIGMA / 255 * noise
    with torch.no_grad():
        restored = net(noisy)
    gain = psnr(restored, gt, round_uint8=True) - psnr(noisy, gt, round_uint8=True)
    assert gain > 6.0  # about 17 dB on this crop; an untrained or mis-wired net loses dB
