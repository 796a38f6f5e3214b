"""metrics.csv: append-only learning curves in long format (step, metric, value).

Long format because the set of metrics grows during a run (evaluation and diagnostics
arrive on their own intervals) and rows are only ever appended. On resume from step k,
rows after k (written after the checkpoint) are dropped, so a resumed run's file reads
as if it had never stopped.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from .files import Unreadable, atomic_write_text

HEADER = ["step", "metric", "value"]


class MetricsWriter:
    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is None or not self.path.exists():
            atomic_write_text(self.path, ",".join(HEADER) + "\n")
        else:
            self._truncate_after(resume_step)
        self._file = open(self.path, "a", newline="")
        self._csv = csv.writer(self._file)

    def _truncate_after(self, step: int) -> None:
        with open(self.path, newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        keep = [r for r in rows if len(r) == 3 and r[0].isdigit() and int(r[0]) <= step]
        lines = [",".join(HEADER)] + [",".join(r) for r in keep]
        atomic_write_text(self.path, "\n".join(lines) + "\n")

    def write(self, step: int, values: dict) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)):
                self._csv.writerow([step, name, repr(float(value)) if math.isfinite(value)
                                    else str(float(value))])
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
