"""Classical image super-resolution (×2/×3/×4) with MATLAB-compatible bicubic down-sampling.

Quick default: a tiny columnar Hi-IR ×2 model trained on the embedded colour crops and
evaluated on Set5 (Y channel, ``scale`` border cropped)::

    accelerate launch recipes/sr.py
    accelerate launch recipes/sr.py --model hiir_sr_small_x4
    accelerate launch recipes/sr.py --preset paper --model hiir_b_sr_x4 --train-dir DF2K_HR \\
        --test-dir Set5/HR Set14/HR

The scale is the model's (``hiir_*_x2/x3/x4``); ``--patch-size`` is the low-resolution side.
``--preset paper`` (GPU users): Hi-IR-B ×2, 64² LR patches, batch 4 per GPU (8 GPUs = 32),
Adam at 2e-4, 50k linear warm-up, 500k iterations halved at 50/80/90/95 %, L1 loss — our reading
of the Hi-IR/GRL papers; check it against the papers before citing numbers.
"""

from treeattn.engine import TaskSpec, main, paper_preset

SPEC = TaskSpec(
    name="sr",
    description="Train a Hi-IR super-resolution model (bicubic degradation, MATLAB imresize).",
    data="degraded",
    degradation="bicubic",
    protocol="sr_x{scale}",
    embedded="sr",
    scales=(2, 3, 4),
    defaults={
        "model": "hiir_sr_tiny_x2",
        "optimizer": "adam",
        "patch_size": 32,
        "max_steps": 1500,
        "lr": 1e-3,
        "val_every": 500,
    },
    presets={
        "paper": {
            **paper_preset(
                model="hiir_b_sr_x2",
                patch_size=64,
                batch_size=4,
                max_steps=500_000,
                lr=2e-4,
                weight_decay=0.0,
                tile=None,
            ),
            "optimizer": "adam",
            "scheduler": "multistep",
            "milestones": [0.5, 0.8, 0.9, 0.95],
            "gamma": 0.5,
        },
    },
)

if __name__ == "__main__":
    main(SPEC)
