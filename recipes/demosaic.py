"""Demosaicking: RGGB Bayer mosaic, then Malvar-He-Cutler interpolation (MATLAB ``demosaic``)
as the network input; the model refines it to the full-colour image.

    accelerate launch recipes/demosaic.py        # quick default on the embedded colour crops
    accelerate launch recipes/demosaic.py --preset paper --train-dir DIV2K_HR --test-dir Kodak24

``--preset paper`` (GPU users): Hi-IR U-shape (``hiir_unet_demosaic``), 128² patches, batch 8 per
GPU (8 GPUs), AdamW at 3e-4, 50k warm-up then cosine over 500k iterations, L1 — our reading of
the Hi-IR/GRL papers; check before citing.
"""

from treeattn.engine import TaskSpec, main

SPEC = TaskSpec(
    name="demosaic",
    description="Train a Hi-IR demosaicking model (Bayer RGGB + Malvar input).",
    data="degraded",
    degradation="bayer",
    degradation_params={"pattern": "RGGB"},
    protocol="demosaic",
    embedded="images",
    defaults={
        "model": "hiir_unet_tiny",
        "channels": 3,
        "loss": "l1",
        "optimizer": "adamw",
        "patch_size": 48,
        "batch_size": 8,
        "max_steps": 1200,
        "max_minutes": 8.5,
        "lr": 2e-3,
        "warmup_steps": 50,
        "min_lr_ratio": 0.01,
        "val_every": 400,
        "output_dir": "outputs/demosaic",
    },
    presets={
        "paper": {
            "max_minutes": 0,
            "model": "hiir_unet_demosaic",
            "patch_size": 128,
            "batch_size": 8,
            "max_steps": 500_000,
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
