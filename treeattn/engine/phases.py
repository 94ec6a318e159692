"""Crop phases: the training crop size and batch size as a function of the step.

A run trains in phases. The first starts at step 0 with ``--patch-size`` and ``--batch-size``;
``--patch-schedule`` adds later ones as ``STEP:PATCH:BATCH`` (e.g. ``8000:128:2 16000:176:1``:
from step 8000 on, 128² crops in batches of 2; from 16000 on, 176² crops one at a time), so a
model sees small crops while it learns local statistics and crops large enough for its widest
attention regions later, at about the same pixels per step.

Each phase has its own training loader. A phase begins with a fresh epoch of its loader right
after the step that reaches its start, before that step's checkpoint, so a run resumed at any step
draws exactly the batches a straight run draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Phase", "crop_phases", "parse_phase", "phase_at"]


@dataclass(frozen=True)
class Phase:
    """One crop phase.

    Attributes:
        start: First optimizer step (0-based count of steps done) trained with this phase.
        patch_size: Training crop side (of the network input).
        batch_size: Batch size per process.
    """

    start: int
    patch_size: int
    batch_size: int

    def describe(self) -> str:
        """``"crops 128x128, batch 2"``."""
        return f"crops {self.patch_size}x{self.patch_size}, batch {self.batch_size}"


def parse_phase(text: str) -> Phase:
    """Parse one ``STEP:PATCH:BATCH`` entry of ``--patch-schedule``.

    Raises:
        ValueError: Not three integers, or a step < 1, a patch or batch < 1.
    """
    parts = str(text).split(":")
    try:
        start, patch, batch = (int(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"--patch-schedule entry {text!r} must be STEP:PATCH:BATCH with three integers, "
            "e.g. 8000:128:2"
        ) from None
    if start < 1 or patch < 1 or batch < 1:
        raise ValueError(
            f"--patch-schedule entry {text!r}: STEP, PATCH and BATCH must all be >= 1 "
            "(the phase at step 0 is --patch-size / --batch-size)"
        )
    return Phase(start=start, patch_size=patch, batch_size=batch)


def crop_phases(
    *, patch_size: int, batch_size: int, schedule: Sequence[str], max_steps: int
) -> tuple[Phase, ...]:
    """All phases of a run: ``(0, patch_size, batch_size)`` then the schedule's entries.

    Args:
        patch_size: Crop side of the first phase (``--patch-size``).
        batch_size: Batch size of the first phase (``--batch-size``).
        schedule: ``--patch-schedule`` entries, ``STEP:PATCH:BATCH``.
        max_steps: The run's steps; every phase must start before it.

    Raises:
        ValueError: A malformed entry, steps not strictly increasing, or a phase that would
            start at or after ``max_steps`` (it would never train).
    """
    phases = [Phase(start=0, patch_size=patch_size, batch_size=batch_size)]
    for entry in schedule:
        phase = parse_phase(entry)
        if phase.start <= phases[-1].start:
            raise ValueError(
                f"--patch-schedule steps must increase: {entry!r} starts at step {phase.start}, "
                f"not after the previous phase's step {phases[-1].start}"
            )
        if phase.start >= max_steps:
            raise ValueError(
                f"--patch-schedule entry {entry!r} starts at step {phase.start}, at or after "
                f"--max-steps {max_steps}, so it would never train; remove it or raise "
                "--max-steps"
            )
        phases.append(phase)
    return tuple(phases)


def phase_at(phases: Sequence[Phase], step: int) -> int:
    """Index of the phase that trains the step after ``step`` steps are done."""
    return max(i for i, phase in enumerate(phases) if phase.start <= step)
