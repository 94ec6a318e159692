"""Adverse-weather removal (rain + fog, snow, raindrops) from paired folders.

Smooth-L1 loss with Adam, plus an optional VGG perceptual term when you give local VGG-19
weights (``--perceptual-weight 0.04 --vgg-weights vgg19.pth``; nothing is downloaded). With no
folders, synthetic rain streaks + haze on the embedded colour crops are written under
``<output_dir>/synthetic``::

    accelerate launch recipes/weather.py
    accelerate launch recipes/weather.py --preset paper --train-lq allweather/input \\
        --train-gt allweather/gt --test-lq test1/input --test-gt test1/gt

``--preset paper`` (GPU users): Hi-IR U-shape (``hiir_unet_weather``), 256² patches, batch 4 per
GPU (8 GPUs), Adam at 2e-4, 50k warm-up then cosine over 300k iterations, smooth-L1 — our reading
of the Hi-IR/GRL papers; check before citing.
"""

from treeattn.data.benchmark import Protocol
from treeattn.engine import TaskSpec, main

SPEC = TaskSpec(
    name="weather",
    description="Train a Hi-IR adverse-weather removal model on degraded/clean folder pairs.",
    data="paired",
    synthetic="rain",
    protocol=Protocol(name="weather"),
    embedded="images",
    defaults={
        "model": "hiir_unet_tiny",
        "channels": 3,
        "loss": "smooth_l1",
        "optimizer": "adam",
        "patch_size": 48,
        "batch_size": 8,
        "max_steps": 1200,
        "max_minutes": 8.5,
        "lr": 2e-3,
        "warmup_steps": 50,
        "min_lr_ratio": 0.01,
        "val_every": 400,
        "output_dir": "outputs/weather",
    },
    presets={
        "paper": {
            "max_minutes": 0,
            "model": "hiir_unet_weather",
            "patch_size": 256,
            "batch_size": 4,
            "max_steps": 300_000,
            "lr": 2e-4,
            "warmup_steps": 50_000,
            "min_lr_ratio": 1e-6 / 2e-4,
            "checkpointing_steps": 5000,
            "val_every": 5000,
            "tile": 512,
        },
    },
    smoke={
        "max_steps": 2,
        "max_minutes": 0,
        "batch_size": 2,
        "patch_size": 32,
        "warmup_steps": 0,
        "val_every": 0,
    },
)

if __name__ == "__main__":
    main(SPEC)
