"""The one training engine of treeattn, on HuggingFace Accelerate.

A recipe states a :class:`TaskSpec` and calls :func:`run_recipe`; see ``recipes/``.
"""

from treeattn.engine.config import parse_config
from treeattn.engine.recipe import InputError, main, run_recipe
from treeattn.engine.settings import TrainConfig
from treeattn.engine.task import SMOKE, LevelSpec, TaskSpec, paper_preset
from treeattn.engine.trainer import Progress, Run, fit, prepare_run

__all__ = [
    "SMOKE",
    "InputError",
    "LevelSpec",
    "Progress",
    "Run",
    "TaskSpec",
    "TrainConfig",
    "fit",
    "main",
    "paper_preset",
    "parse_config",
    "prepare_run",
    "run_recipe",
]
