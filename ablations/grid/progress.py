"""The grid runner's live display: runs done / running / failed and an ETA.

On a terminal a rich progress bar redraws in place (refreshed from the runner's own
loop, so no display thread exists when child processes are forked); elsewhere (CI
logs, pipes) there is no bar, only one plain line per finished run and, every
ABLATE_PROGRESS_S seconds (default 30), one line with the step each run in flight has
reached. Steps come from the tail of each run's metrics.csv (the store's only channel
from a run to the runner), so the bar's count and ETA move within long runs too.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn, TimeRemainingColumn

from .. import store

STYLE = {"ok": "green", "diverged": "yellow", "failed": "red", "elsewhere": "cyan"}


class GridProgress:
    def __init__(self, grid: str, total: int, live: bool | None = None, stream=None,
                 every_s: float | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.total = total
        self.counts = {"ok": 0, "diverged": 0, "failed": 0, "elsewhere": 0}
        # text -> [metrics.csv, total steps, latest step]
        self.running: dict[str, list] = {}
        self.every_s = float(os.environ.get("ABLATE_PROGRESS_S", 30)) if every_s is None \
            else every_s
        self._last = 0.0
        self._last_steps = self._last_line = time.monotonic()
        self._bar = None
        if self.live:
            self._bar = Progress(
                TextColumn(f"[bold]{grid}[/]"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(file=self.stream), auto_refresh=False, transient=False)
            self._task = self._bar.add_task(grid, total=total, status="")

    def __enter__(self):
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._refresh(force=True)
            self._bar.stop()

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def started(self, text: str, run_dir: Path | None = None, steps: int | None = None) -> None:
        metrics = Path(run_dir) / store.METRICS if run_dir is not None else None
        self.running[text] = [metrics, steps, None]
        self._refresh(force=True)

    def done(self, text: str, status: str, detail: str = "") -> None:
        """A run left the pool: ok / diverged / failed / elsewhere (another runner has it)."""
        self.running.pop(text, None)
        self.counts[status] = self.counts.get(status, 0) + 1
        line = f"[{self.finished}/{self.total}] {status:<9} {text}"
        line += f"  {detail}" if detail else ""
        if self._bar is not None:
            self._bar.console.print(Text(line, style=STYLE.get(status, "")))
            self._refresh(force=True)
        else:
            print(line, file=self.stream, flush=True)

    def tick(self) -> None:
        now = time.monotonic()
        fresh = now - self._last_steps >= min(1.0, self.every_s)
        if fresh:
            self._last_steps = now
            self.read_steps()
        if self._bar is None and self.running and now - self._last_line >= self.every_s:
            self._last_line = now
            print(f"[{self.finished}/{self.total}] in flight: {self.in_flight()}",
                  file=self.stream, flush=True)
        self._refresh(force=fresh)

    def read_steps(self) -> None:
        for entry in self.running.values():
            if entry[0] is not None:
                entry[2] = store.last_step(entry[0])

    def in_flight(self) -> str:
        """'<run> step 250/1000, <run> step 0/1000' for the runs in flight."""
        return ", ".join(f"{text} step {step if step is not None else '-'}"
                         f"{f'/{steps}' if steps else ''}"
                         for text, (_, steps, step) in self.running.items())

    def fraction_running(self) -> float:
        """How much of the runs in flight is done, in runs (for the bar and its ETA)."""
        return sum(min(1.0, step / steps) for _, steps, step in self.running.values()
                   if steps and step)

    def _refresh(self, force: bool = False) -> None:
        if self._bar is None or (not force and time.monotonic() - self._last < 0.25):
            return
        self._last = time.monotonic()
        bad = self.counts["failed"] + self.counts["diverged"]
        steps = [f"{step}/{total}" for _, total, step in self.running.values()
                 if total and step is not None]
        status = f"{len(self.running)} running" + (f" ({', '.join(steps)})" if steps else "")
        if bad:
            status += f" · [red]{bad} not ok[/]"
        if self.counts["elsewhere"]:
            status += f" · {self.counts['elsewhere']} elsewhere"
        self._bar.update(self._task, completed=self.finished + self.fraction_running(),
                         status=status)
        self._bar.refresh()
