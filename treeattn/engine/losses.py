"""Training losses: L1, Charbonnier, smooth-L1, and a VGG perceptual term from local weights.

The pixel loss is chosen by name from :data:`PIXEL_LOSSES`; :func:`build_loss` adds the
perceptual term only when the user gives a local VGG-19 weights file (nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

__all__ = [
    "PIXEL_LOSSES",
    "CharbonnierLoss",
    "CombinedLoss",
    "L1Loss",
    "PerceptualLoss",
    "SmoothL1Loss",
    "build_loss",
    "vgg19_features",
]


class L1Loss(nn.Module):
    """Mean absolute error."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``mean(|pred - target|)``."""
        return F.l1_loss(pred, target)


class CharbonnierLoss(nn.Module):
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))``, a smooth L1.

    Args:
        eps: Smoothing constant (1e-3 as in the deblurring literature).
    """

    def __init__(self, *, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"{eps=} must be positive")
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean Charbonnier penalty."""
        return torch.sqrt((pred - target).square() + self.eps**2).mean()


class SmoothL1Loss(nn.Module):
    """Huber-style smooth L1 loss.

    Args:
        beta: Where the loss switches from quadratic to linear.
    """

    def __init__(self, *, beta: float = 1.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"{beta=} must be positive")
        self.beta = beta

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean smooth-L1 penalty."""
        return F.smooth_l1_loss(pred, target, beta=self.beta)


PIXEL_LOSSES: dict[str, type[nn.Module]] = {
    "l1": L1Loss,
    "charbonnier": CharbonnierLoss,
    "smooth_l1": SmoothL1Loss,
}

# VGG-19 feature extractor layout: channel counts, "M" = 2x2 max-pool. Indices of the layers
# follow the common `features.N` numbering so local VGG-19 weight files load directly.
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M")
_VGG19 += (512, 512, 512, 512, "M")


def vgg19_features() -> nn.Sequential:
    """Untrained VGG-19 convolutional feature stack (``features.N`` layer numbering)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU()]
            channels = int(item)
    return nn.Sequential(*layers)


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


class PerceptualLoss(nn.Module):
    """L1 distance between frozen VGG-19 features of prediction and target.

    Args:
        weights: Local VGG-19 weights (``.pth`` or ``.safetensors``) with ``features.N.*`` keys
            (torchvision's ImageNet VGG-19 file works as is).
        layer: Index of the last ``features`` layer used (34 = ``relu5_4``).

    Raises:
        FileNotFoundError: If ``weights`` does not exist.
        ValueError: If the file lacks the VGG-19 feature weights.
    """

    _MEAN = (0.485, 0.456, 0.406)
    _STD = (0.229, 0.224, 0.225)

    def __init__(self, *, weights: str | Path, layer: int = 34) -> None:
        super().__init__()
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG-19 weights {path} not found; download torchvision's vgg19 ImageNet "
                "weights yourself and pass their local path with --vgg-weights, or set "
                "--perceptual-weight 0"
            )
        state = {k.removeprefix("features."): v for k, v in _load_state(path).items()}
        features = vgg19_features()[: layer + 1]
        missing = sorted(set(features.state_dict()) - set(state))
        if missing:
            raise ValueError(f"{path} is not a VGG-19 weights file: missing {missing[:4]} ...")
        features.load_state_dict({k: state[k] for k in features.state_dict()})
        self.features = features.requires_grad_(False).eval()
        for name, values in (("mean", self._MEAN), ("std", self._STD)):
            buffer = rearrange(torch.tensor(values), "c -> 1 c 1 1")
            self.register_buffer(name, buffer, persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Keep the frozen VGG in eval mode whatever the surrounding mode."""
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean L1 distance of VGG features (gray inputs are repeated to RGB)."""
        if pred.shape[1] == 1:
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        pred = self.features((pred - self.mean) / self.std)
        target = self.features((target - self.mean) / self.std)
        return F.l1_loss(pred, target)


class CombinedLoss(nn.Module):
    """``pixel(pred, target) + weight * perceptual(pred, target)``.

    Args:
        pixel: The pixel loss module.
        perceptual: The perceptual loss module.
        weight: Weight of the perceptual term.
    """

    def __init__(self, *, pixel: nn.Module, perceptual: nn.Module, weight: float) -> None:
        super().__init__()
        self.pixel = pixel
        self.perceptual = perceptual
        self.weight = weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the weighted sum of both terms."""
        return self.pixel(pred, target) + self.weight * self.perceptual(pred, target)


def build_loss(
    name: str,
    *,
    perceptual_weight: float = 0.0,
    vgg_weights: str | None = None,
) -> nn.Module:
    """Build the training loss.

    Args:
        name: Pixel loss, one of :data:`PIXEL_LOSSES`.
        perceptual_weight: Weight of the VGG perceptual term; 0 disables it.
        vgg_weights: Local VGG-19 weights; required when ``perceptual_weight > 0``.

    Returns:
        The loss module ``(pred, target) -> scalar``.

    Raises:
        ValueError: For an unknown loss name, a negative weight, or a perceptual weight without
            weights file.
    """
    if name not in PIXEL_LOSSES:
        raise ValueError(f"unknown loss {name=}; choose one of {sorted(PIXEL_LOSSES)}")
    pixel = PIXEL_LOSSES[name]()
    if perceptual_weight < 0:
        raise ValueError(f"{perceptual_weight=} must be >= 0")
    if perceptual_weight == 0:
        return pixel
    if vgg_weights is None:
        raise ValueError(
            f"{perceptual_weight=} needs local VGG-19 weights: pass --vgg-weights PATH "
            "(nothing is downloaded), or set --perceptual-weight 0"
        )
    return CombinedLoss(
        pixel=pixel, perceptual=PerceptualLoss(weights=vgg_weights), weight=perceptual_weight
    )
