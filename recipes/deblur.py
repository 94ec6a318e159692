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

from treeattn.engine import TaskSpec, main, paper_preset

SPEC = TaskSpec(
    name="deblur",
    description="Train a Hi-IR motion-deblurring model on blurred/sharp folder pairs.",
    data="paired",
    synthetic="motion_blur",
    protocol="deblur",
    embedded="images",
    defaults={
        "loss": "charbonnier",
    },
    presets={
        "paper": paper_preset(
            model="hiir_unet_deblur", patch_size=192, batch_size=4, max_steps=600_000
        ),
    },
)

if __name__ == "__main__":
    main(SPEC)
