"""Inference: restore tensors and image files, ×8 self-ensemble, model loading and export.

Every restoration — ``restore_image``, ``restore_files``, the engine's validation — goes through
one ``Runner`` (:mod:`treeattn.inference.runner`).

``restore_image`` (tensors) needs only the core install; ``restore_files`` needs the ``[data]``
extra and ``export_model`` with ``format="onnx"`` the ``[export]`` extra.
"""

from treeattn.inference.api import check_model_input, restore_image, select_runner
from treeattn.inference.ensemble import DIHEDRAL, self_ensemble
from treeattn.inference.export import export_files, export_model
from treeattn.inference.files import RestoreSummary, find_inputs, plan_outputs, restore_files
from treeattn.inference.runner import Runner
from treeattn.models.registry import load_model

__all__ = [
    "DIHEDRAL",
    "RestoreSummary",
    "Runner",
    "check_model_input",
    "export_files",
    "export_model",
    "find_inputs",
    "load_model",
    "plan_outputs",
    "restore_files",
    "restore_image",
    "select_runner",
    "self_ensemble",
]
