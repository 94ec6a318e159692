"""Gaussian denoising (gray or colour), fixed σ or blind σ range.

Quick default (no arguments): a tiny Hi-IR U-shape gray denoiser at σ = 25, trained on the
embedded gray images and evaluated on the embedded gray test set (Set12 crops) in a few minutes
on a laptop CPU::

    accelerate launch recipes/denoise.py
    accelerate launch recipes/denoise.py --channels 3 --sigma 0 50 --test-sigma 25   # blind colour
    accelerate launch recipes/denoise.py --preset paper --train-dir DFWB --test-dir CBSD68

``--preset cpu_gray`` reproduces the shipped blind gray denoiser ``hiir_dn_gray_cpu`` (σ 0-50) on a
2-core CPU; give it the training and test folders::

    accelerate launch recipes/denoise.py --preset cpu_gray \
        --train-dir ../shared/data/train/Train400 \
        --test-dir ../shared/data/test/Set12 ../shared/data/test/BSD68

``--preset cpu_gray_mid`` trains the long-range blind gray denoiser ``hiir_dn_gray_mid`` (σ 0-50;
about 6 hours on 2 cores, resumable); validate it on long-range structure too::

    python benchmarks/urban_split.py --out ../runs/data/Urban100_val
    accelerate launch recipes/denoise.py --preset cpu_gray_mid \
        --train-dir ../shared/data/train/Train400 --output-dir ../runs/dn_gray_mid \
        --test-dir ../shared/data/test/Set12 ../shared/data/test/BSD68 ../runs/data/Urban100_val

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
        # The shipped `hiir_dn_gray_cpu`: one blind gray model for σ 0-50, sized and scheduled
        # for about 2.2 hours on a quiet 2-core CPU (its model card:
        # treeattn/pretrained/hiir_dn_gray_cpu/README.md).
        "cpu_gray": {
            "model": "hiir_unet_tiny_dn_gray",
            "channels": 1,
            "level": [0.0, 50.0],
            "test_level": [25.0],
            "patch_size": 64,
            "batch_size": 8,
            "lr": 2e-3,
            "warmup_steps": 500,
            "min_lr_ratio": 0.01,
            "max_steps": 20_000,
            "max_minutes": 0,
            "ema_decay": 0.999,
            "val_every": 2000,
            "checkpointing_steps": 500,
            "save_images": 2,
            "output_dir": "outputs/denoise_cpu_gray",
        },
        # The long-range gray denoiser `hiir_dn_gray_mid` (issue 17): the mid-width U-shape with
        # 64 px level-1 regions, crops of 64² then 128² (same pixels per step), a gentler peak LR;
        # about 6 hours on a quiet 2-core CPU, in resumable pieces. Chosen by the equal-time
        # sweep in benchmarks/results/denoise_longrange_sweep.json.
        "cpu_gray_mid": {
            "model": "hiir_unet_mid_dn_gray",
            "channels": 1,
            "level": [0.0, 50.0],
            "test_level": [25.0],
            "patch_size": 64,
            "batch_size": 8,
            "patch_schedule": ["6000:128:2"],
            "lr": 1e-3,
            "warmup_steps": 1000,
            "min_lr_ratio": 0.01,
            "max_steps": 36_000,
            "max_minutes": 0,
            "ema_decay": 0.999,
            "val_every": 4000,
            "checkpointing_steps": 1000,
            "save_images": 2,
            "output_dir": "outputs/denoise_cpu_gray_mid",
        },
        # Fine-tune the shipped `hiir_dn_gray_cpu` for long range: its weights with 64 px level-1
        # regions (the position-bias MLP fits any window), 128² crops, a tenth of its peak LR and
        # a short warm-up (issue 22; measured against scratch in
        # benchmarks/results/denoise_longrange_sweep.json, arms warm_tree64_p128 and
        # tiny_tree64_p128).
        "cpu_gray_warm": {
            "init_from": "hiir_dn_gray_cpu",
            "model": "hiir_unet_tiny_dn_gray",
            "model_overrides": {"patch_sizes": [[8, 64], [8, 64], [8, 32], [8, 32]]},
            "channels": 1,
            "level": [0.0, 50.0],
            "test_level": [25.0],
            "patch_size": 128,
            "batch_size": 2,
            "lr": 2e-4,
            "warmup_steps": 100,
            "min_lr_ratio": 0.01,
            "max_steps": 6000,
            "max_minutes": 0,
            "ema_decay": 0.999,
            "val_every": 1000,
            "checkpointing_steps": 500,
            "save_images": 2,
            "output_dir": "outputs/denoise_cpu_gray_warm",
        },
        "paper": paper_preset(
            model="hiir_unet_dn_color", patch_size=128, batch_size=8, max_steps=500_000
        ),
    },
)

if __name__ == "__main__":
    main(SPEC)
