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

from treeattn.engine import TaskSpec, main, paper_preset

SPEC = TaskSpec(
    name="weather",
    description="Train a Hi-IR adverse-weather removal model on degraded/clean folder pairs.",
    data="paired",
    synthetic="rain",
    protocol="weather",
    embedded="images",
    defaults={
        "loss": "smooth_l1",
        "optimizer": "adam",
    },
    presets={
        "paper": paper_preset(
            model="hiir_unet_weather",
            patch_size=256,
            batch_size=4,
            max_steps=300_000,
            lr=2e-4,
            weight_decay=0.0,
            tile=512,
        ),
    },
)

if __name__ == "__main__":
    main(SPEC)
