"""Published peer models the benchmarks compare against (benchmark-only, not package code).

``DnCNN`` is DnCNN-S (Zhang et al., "Beyond a Gaussian Denoiser", TIP 2017): 17 layers of 3×3
convolutions that predict the noise, ``restored = x - net(x)``. Its weights are the authors' own
release, stored as ``../shared/models/dncnn_s25/model.safetensors`` (gray, non-blind σ = 25; see
``../shared/models/README.md``); they are read from there, never copied into the project::

    from peers import load_dncnn

    net = load_dncnn(DNCNN_S25)
    restored = net(noisy)          # (B, 1, H, W) in [0, 1]
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

__all__ = ["DNCNN_S25", "DNCNN_SIGMA", "DnCNN", "load_dncnn"]

#: The DnCNN-S σ = 25 weights (outside the project, beside the other shared material).
DNCNN_S25 = (
    Path(__file__).resolve().parents[2] / "shared" / "models" / "dncnn_s25" / ("model.safetensors")
)
#: The noise level (0-255 scale) the DnCNN-S weights were trained for.
DNCNN_SIGMA = 25.0


class DnCNN(nn.Module):
    """DnCNN: ``depth`` 3×3 convolutions (the middle ones with batch norm) predicting the noise.

    Layer ``dncnn.0`` is Conv(channels → width, bias) + ReLU, then ``depth - 2`` blocks of
    Conv(width → width, no bias) + BatchNorm(eps 1e-4) + ReLU, and last Conv(width → channels,
    no bias): the keys of the authors' PyTorch release (``dncnn.N.*``).

    Args:
        channels: Image channels (1 for gray).
        width: Feature channels.
        depth: Convolutions in all (17 for DnCNN-S).
    """

    def __init__(self, *, channels: int = 1, width: int = 64, depth: int = 17) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(
                f"depth must be >= 3 (first, middle and last convolution), got {depth}"
            )
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width, eps=1e-4),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=False))
        self.dncnn = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The restored image: the input minus the predicted noise."""
        return x - self.dncnn(x)


def load_dncnn(path: str | os.PathLike = DNCNN_S25) -> DnCNN:
    """DnCNN with the weights of ``path``, in eval mode (batch norm on its running statistics).

    The channels, width and depth are read from the file (DnCNN-S: 1, 64 and 17); the load is
    then strict: every weight and running statistic of that network must be in the file and every
    tensor of the file must be used. Only ``num_batches_tracked`` (dropped from the stored
    release, unused in eval mode) is taken from the fresh network.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        RuntimeError: If the file's tensors do not fit the architecture (missing, unexpected or
            mis-shaped keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"DnCNN weights {str(path)!r} not found; pass the model.safetensors of "
            "../shared/models/dncnn_s25 (see ../shared/models/README.md)"
        )
    weights = load_file(str(path))
    first = weights.get("dncnn.0.weight")
    if first is None or first.ndim != 4:
        raise RuntimeError(
            f"{path} holds no DnCNN: its first convolution dncnn.0.weight is missing"
        )
    last = max(int(key.split(".")[1]) for key in weights if key.startswith("dncnn."))
    width, channels = first.shape[:2]
    net = DnCNN(channels=channels, width=width, depth=(last - 2) // 3 + 2)
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            weights.setdefault(key, value)
    net.load_state_dict(weights, strict=True)
    return net.eval()
