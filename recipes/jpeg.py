"""JPEG compression-artifact removal (gray or colour), fixed quality or blind quality range.

Gray images follow the field's convention: the MATLAB Y channel rounded to uint8, then encoded
as grayscale JPEG (OpenCV-compatible, 4:2:0 chroma for colour).

    accelerate launch recipes/jpeg.py                       # quick default: gray, quality 10
    accelerate launch recipes/jpeg.py --quality 10 40 --test-quality 20    # blind
    accelerate launch recipes/jpeg.py --preset paper --channels 3 --train-dir DFWB --test-dir LIVE1

``--preset paper`` (GPU users): Hi-IR U-shape (``hiir_unet_jpeg_color``; channels follow
``--channels``), 128² patches, batch 8 per GPU (8 GPUs), AdamW at 3e-4, 50k warm-up then cosine
over 500k iterations, L1 — our reading of the Hi-IR/GRL papers; check before citing.
"""

from treeattn.engine import LevelSpec, TaskSpec, main, paper_preset

SPEC = TaskSpec(
    name="jpeg",
    description="Train a Hi-IR JPEG artifact-removal model.",
    data="degraded",
    degradation="jpeg",
    level=LevelSpec(
        flag="quality",
        param="quality",
        help="JPEG quality: one value (10) or LOW HIGH (blind)",
        low=1,
        high=100,
        integer=True,
    ),
    gray_method="y",
    protocol="jpeg",
    embedded="images",
    defaults={
        "channels": 1,
        "level": [10.0],
        "max_steps": 600,
        "val_every": 300,
    },
    presets={
        "paper": paper_preset(
            model="hiir_unet_jpeg_color", patch_size=128, batch_size=8, max_steps=500_000
        ),
    },
)

if __name__ == "__main__":
    main(SPEC)
