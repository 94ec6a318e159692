"""Gaussian denoising (gray or colour), fixed σ or blind σ range.

Quick default (no arguments): a tiny Hi-IR U-shape gray denoiser at σ = 25, trained on the
embedded gray images and evaluated on the embedded gray test set (Set12 crops) in a few minutes
on a laptop CPU::

    accelerate launch recipes/denoise.py
    accelerate launch recipes/denoise.py --channels 3 --sigma 0 50 --test-sigma 25   # blind colour
    accelerate launch recipes/denoise.py --preset paper --train-dir DFWB --test-dir CBSD68

``--preset paper`` (GPU users): the Hi-IR U-shape denoiser (``hiir_unet_dn_color``; its channels
follow ``--channels``), 128² patches, batch 8 per GPU (8 GPUs), AdamW at 3e-4, 50k linear warm-up
then cosine to 1e-6 over 500k iterations, L1 loss — our reading of the Hi-IR/GRL papers; check it
against the papers before citing numbers.
"""

from treeattn.engine import LevelSpec, TaskSpec, main, paper_preset

SPEC = TaskSpec(
    name="denoise",
    description="Train a Hi-IR denoiser for additive white Gaussian noise (σ on the 0-255 scale).",
    data="degraded",
    degradation="awgn",
    level=LevelSpec(
        flag="sigma",
        param="sigma",
        help="noise σ: one value (25) or LOW HIGH for blind training",
        low=0,
        high=255,
    ),
    protocol="denoise",
    embedded="images",
    defaults={
        "channels": 1,
        "level": [25.0],
        "val_every": 300,
    },
    presets={
        "paper": paper_preset(
            model="hiir_unet_dn_color", patch_size=128, batch_size=8, max_steps=500_000
        ),
    },
)

if __name__ == "__main__":
    main(SPEC)
