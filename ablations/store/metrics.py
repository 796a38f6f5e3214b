"""metrics.csv: append-only learning curves in long format (step, metric, value).

Long format because the set of metrics grows during a run (evaluation and diagnostics
arrive on their own intervals) and rows are only ever appended. A checkpoint records how
many rows the file had when it was taken; on resume every later row is dropped before
training goes on, so a resumed run's file is byte for byte an uninterrupted run's (rows
at the checkpoint's own step were written both before it, evaluation, and after it,
the next step's loss: a step number alone cannot tell them apart).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from .files import Unreadable, atomic_write_text

HEADER = ["step", "metric", "value"]


class MetricsWriter:
    """`keep_rows`: the data rows the checkpoint resumed from had (None: a checkpoint
    written before rows were counted, which keeps the rows up to `resume_step`)."""

    def __init__(self, path: Path, resume_step: int | None = None,
                 keep_rows: int | None = None):
        self.path = Path(path)
        self.rows = 0                    # data rows in the file: checkpoints record it
        if resume_step is None or not self.path.exists():
            atomic_write_text(self.path, ",".join(HEADER) + "\n")
        else:
            self._truncate(resume_step, keep_rows)
        self._file = open(self.path, "a", newline="")
        # csv's default line ending is \r\n: a resumed file would mix both
        self._csv = csv.writer(self._file, lineterminator="\n")

    def _truncate(self, step: int, keep_rows: int | None) -> None:
        with open(self.path, newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        if keep_rows is not None:
            keep = rows[:keep_rows]
        else:
            keep = [r for r in rows if len(r) == 3 and r[0].isdigit() and int(r[0]) <= step]
        self.rows = len(keep)
        lines = [",".join(HEADER)] + [",".join(r) for r in keep]
        atomic_write_text(self.path, "\n".join(lines) + "\n")

    def write(self, step: int, values: dict) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)):
                self._csv.writerow([step, name, repr(float(value)) if math.isfinite(value)
                                    else str(float(value))])
                self.rows += 1
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def last_step(path: Path, tail_bytes: int = 4096) -> int | None:
    """The step of the last complete row, reading only the file's tail: cheap enough for
    the grid runner to poll the runs in flight. None when there is no row yet."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - tail_bytes))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    # the last line may be half written (no newline yet): only complete lines count
    for line in reversed(tail.split("\n")[:-1]):
        step = line.split(",", 1)[0]
        if step.isdigit() and line.count(",") == 2:
            return int(step)
    return None


def read_metrics(path: Path):
    """A DataFrame (step, metric, value); a resumed run may repeat steps: the last row
    wins. FileNotFoundError when absent, Unreadable when damaged."""
    import pandas as pd                   # only readers (the report) pay for pandas
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise Unreadable(path, f"unreadable ({str(e).splitlines()[0] if str(e) else e})") \
            from None
    if list(df.columns) != HEADER:
        raise Unreadable(path, f"expected columns {','.join(HEADER)}, got "
                               f"{','.join(map(str, df.columns))}")
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df.dropna(subset=["step"]).astype({"step": int})
    return df.drop_duplicates(["step", "metric"], keep="last").reset_index(drop=True)
