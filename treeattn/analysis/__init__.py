"""Model analysis: parameter counts, MACs, activation memory and receptive fields."""

from treeattn.analysis.macs import MacsReport, count_macs
from treeattn.analysis.memory import LiveTensorTracker, peak_activation_memory
from treeattn.analysis.params import (
    count_parameters,
    parameters_by_child,
    parameters_by_component,
)
from treeattn.analysis.receptive_field import (
    analytic_receptive_field,
    dependency_mask,
    effective_receptive_field,
)

__all__ = [
    "LiveTensorTracker",
    "MacsReport",
    "analytic_receptive_field",
    "count_macs",
    "count_parameters",
    "dependency_mask",
    "effective_receptive_field",
    "parameters_by_child",
    "parameters_by_component",
    "peak_activation_memory",
]
