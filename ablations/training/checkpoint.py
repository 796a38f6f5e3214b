"""Append-only metric curves and atomic checkpoints: nothing is lost when a run is
killed at any moment, and a resumed run's files read as if it had never stopped."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from .. import store


class MetricsWriter:
    """metrics.csv in long format (step, metric, value), one row per value.

    Long format because the set of metrics grows during a run (evaluation and
    diagnostics arrive on their own intervals) and rows are only ever appended.
    On resume from step k, rows after k (written after the checkpoint) are dropped.
    """

    HEADER = ["step", "metric", "value"]

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is None or not self.path.exists():
            store.atomic_write_text(self.path, ",".join(self.HEADER) + "\n")
        else:
            self._truncate_after(resume_step)
        self._file = open(self.path, "a", newline="")
        self._csv = csv.writer(self._file)

    def _truncate_after(self, step: int) -> None:
        with open(self.path, newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        keep = [r for r in rows if len(r) == 3 and r[0].isdigit() and int(r[0]) <= step]
        lines = [",".join(self.HEADER)] + [",".join(r) for r in keep]
        store.atomic_write_text(self.path, "\n".join(lines) + "\n")

    def write(self, step: int, values: dict) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)):
                self._csv.writerow([step, name, repr(float(value)) if math.isfinite(value)
                                    else str(float(value))])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def save_checkpoint_atomically(trainer, path: Path) -> None:
    """trainer.save_checkpoint to a temp file, then os.replace: a kill mid-write leaves
    the previous checkpoint intact. Every rank calls this (it synchronises)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(str(tmp))
    if trainer.is_global_zero:
        os.replace(tmp, path)


def checkpoint_step(path: Path) -> int | None:
    """The global step stored in a checkpoint, or None if there is none usable."""
    if not Path(path).exists():
        return None
    import torch
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception:                    # unreadable: start over rather than crash forever
        Path(path).unlink()
        return None
