"""Defocus deblurring from paired folders (DPDD, 16-bit PNG): single image or dual-pixel.

Dual-pixel input stacks the left and right views (6 channels): pass ``--dual-pixel`` and two
folders to ``--train-lq``/``--test-lq`` (left right). With no folders, synthetic pairs (disk
blur, or half-disk left/right views with ``--dual-pixel``) of the embedded colour crops are
written under ``<output_dir>/synthetic``::

    accelerate launch recipes/defocus.py
    accelerate launch recipes/defocus.py --dual-pixel
    accelerate launch recipes/defocus.py --preset paper --dual-pixel \\
        --train-lq DPDD/train_c/source/L DPDD/train_c/source/R --train-gt DPDD/train_c/target \\
        --test-lq DPDD/test_c/source/L DPDD/test_c/source/R --test-gt DPDD/test_c/target

``--preset paper`` (GPU users): Hi-IR U-shape (``hiir_unet_defocus``; ``--dual-pixel`` gives it
6 input channels like ``hiir_unet_defocus_dp``), 256² patches, batch 4 per GPU (8 GPUs), AdamW at
2e-4, 50k warm-up then cosine over 200k iterations, L1 — our reading of the Hi-IR/GRL papers;
check before citing.
"""

from treeattn.engine import TaskSpec, main, paper_preset

SPEC = TaskSpec(
    name="defocus",
    description="Train a Hi-IR defocus-deblurring model (single image or dual-pixel views).",
    data="paired",
    synthetic="defocus",
    dual_pixel=True,
    dual_pixel_overrides={"residual": "view_mean"},  # global residual: mean of the two views
    protocol="defocus",
    embedded="images",
    presets={
        "paper": paper_preset(
            model="hiir_unet_defocus",
            patch_size=256,
            batch_size=4,
            max_steps=200_000,
            lr=2e-4,
            tile=512,
        ),
    },
)

if __name__ == "__main__":
    main(SPEC)
