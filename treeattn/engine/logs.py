"""Run logs: every record to ``log.jsonl`` and ``<kind>.csv`` always, to tensorboard when installed.

Only the main process writes. Files are appended to, so a resumed run continues its log.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from accelerate import Accelerator

__all__ = ["RunLogger", "tensorboard_available"]


def tensorboard_available() -> bool:
    """Whether accelerate can log to tensorboard (``tensorboard`` or ``tensorboardX`` installed)."""
    from accelerate.utils import is_tensorboard_available

    return is_tensorboard_available()


class RunLogger:
    """Writes metric records of a run.

    Args:
        accelerator: The run's accelerator (its trackers receive the values too when it has any).
        output_dir: Run folder; ``log.jsonl`` and ``<kind>.csv`` are written there.
    """

    def __init__(self, accelerator: Accelerator, output_dir: str | Path) -> None:
        self.accelerator = accelerator
        self.output_dir = Path(output_dir)
        self.start = time.perf_counter()

    def log(self, kind: str, *, step: int, values: dict[str, float]) -> None:
        """Record ``values`` of ``kind`` (``train``, ``val``, ...) at optimizer step ``step``.

        The CSV of a kind keeps the columns of its first record; a later record with other
        columns raises ``ValueError`` instead of silently dropping values.
        """
        record = {"step": step, "time_s": round(time.perf_counter() - self.start, 2), **values}
        if self.accelerator.trackers:
            self.accelerator.log({f"{kind}/{k}": v for k, v in values.items()}, step=step)
        if not self.accelerator.is_main_process:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with (self.output_dir / "log.jsonl").open("a") as f:
            f.write(json.dumps({"kind": kind, **record}) + "\n")
        path = self.output_dir / f"{kind}.csv"
        columns = list(record)
        if path.is_file():
            with path.open(newline="") as f:
                columns = next(csv.reader(f), columns)
        if set(columns) != set(record):
            raise ValueError(
                f"{path} has columns {columns} but the new record has {list(record)}; "
                "use a new --output_dir for a run with other test sets"
            )
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            if f.tell() == 0:
                writer.writeheader()
            writer.writerow(record)
