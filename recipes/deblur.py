"""Motion deblurring from paired folders (GoPro, HIDE, RealBlur), Charbonnier loss.

With no folders, synthetic pairs (random linear motion blur of the embedded colour crops) are
written under ``<output_dir>/synthetic`` so the recipe runs end to end on a laptop::

    accelerate launch recipes/deblur.py
    accelerate launch recipes/deblur.py --preset paper --train-lq GoPro/train/input \\
        --train-gt GoPro/train/target --test-lq GoPro/test/input --test-gt GoPro/test/target

``--preset paper`` (GPU users): Hi-IR U-shape (``hiir_unet_deblur``), 192² patches, batch 4 per
GPU (8 GPUs), AdamW at 3e-4, 50k warm-up then cosine over 600k iterations, Charbonnier loss —
our reading of the Hi-IR/GRL papers; check before citing.
"""

from treeattn.engine import TaskSpec, main

SPEC = TaskSpec(
    name="deblur",
    description="Train a Hi-IR motion-deblurring model on blurred/sharp folder pairs.",
    data="paired",
    synthetic="motion_blur",
    protocol="deblur",
    embedded="images",
    defaults={
        "model": "hiir_unet_tiny",
        "channels": 3,
        "loss": "charbonnier",
        "optimizer": "adamw",
        "patch_size": 48,
        "batch_size": 8,
        "max_steps": 1200,
        "max_minutes": 8.5,
        "lr": 2e-3,
        "warmup_steps": 50,
        "min_lr_ratio": 0.01,
        "val_every": 400,
        "output_dir": "outputs/deblur",
    },
    presets={
        "paper": {
            "max_minutes": 0,
            "model": "hiir_unet_deblur",
            "patch_size": 192,
            "batch_size": 4,
            "max_steps": 600_000,
            "lr": 3e-4,
            "weight_decay": 1e-4,
            "warmup_steps": 50_000,
            "min_lr_ratio": 1e-6 / 3e-4,
            "checkpointing_steps": 5000,
            "val_every": 5000,
            "tile": 256,
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
