"""Demosaicking: RGGB Bayer mosaic, then Malvar-He-Cutler interpolation (MATLAB ``demosaic``)
as the network input; the model refines it to the full-colour image.

    accelerate launch recipes/demosaic.py        # quick default on the embedded colour crops
    accelerate launch recipes/demosaic.py --preset paper --train-dir DIV2K_HR --test-dir Kodak24

``--preset paper`` (GPU users): Hi-IR U-shape (``hiir_unet_demosaic``), 128² patches, batch 8 per
GPU (8 GPUs), AdamW at 3e-4, 50k warm-up then cosine over 500k iterations, L1 — our reading of
the Hi-IR/GRL papers; check before citing.
"""

from treeattn.engine import TaskSpec, main, paper_preset

SPEC = TaskSpec(
    name="demosaic",
    description="Train a Hi-IR demosaicking model (Bayer RGGB + Malvar input).",
    data="degraded",
    degradation="bayer",
    degradation_params={"pattern": "RGGB"},
    protocol="demosaic",
    embedded="images",
    presets={
        "paper": paper_preset(
            model="hiir_unet_demosaic", patch_size=128, batch_size=8, max_steps=500_000
        ),
    },
)

if __name__ == "__main__":
    main(SPEC)
