"""The grid runner's live display: runs done / running / failed and an ETA.

On a terminal a rich progress bar redraws in place (refreshed from the runner's own
loop, so no display thread exists when child processes are forked); elsewhere (CI
logs, pipes) there is no bar, only one plain line per finished run.
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn, TimeRemainingColumn

STYLE = {"ok": "green", "diverged": "yellow", "failed": "red", "elsewhere": "cyan"}


class GridProgress:
    def __init__(self, grid: str, total: int, live: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.total = total
        self.counts = {"ok": 0, "diverged": 0, "failed": 0, "elsewhere": 0}
        self.running: list[str] = []
        self._last = 0.0
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

    def started(self, text: str) -> None:
        self.running.append(text)
        self._refresh(force=True)

    def done(self, text: str, status: str, detail: str = "") -> None:
        """A run left the pool: ok / diverged / failed / elsewhere (another runner has it)."""
        if text in self.running:
            self.running.remove(text)
        self.counts[status] = self.counts.get(status, 0) + 1
        line = f"[{self.finished}/{self.total}] {status:<9} {text}"
        line += f"  {detail}" if detail else ""
        if self._bar is not None:
            self._bar.console.print(Text(line, style=STYLE.get(status, "")))
            self._refresh(force=True)
        else:
            print(line, file=self.stream, flush=True)

    def tick(self) -> None:
        self._refresh()

    def _refresh(self, force: bool = False) -> None:
        if self._bar is None or (not force and time.monotonic() - self._last < 0.25):
            return
        self._last = time.monotonic()
        bad = self.counts["failed"] + self.counts["diverged"]
        status = f"{len(self.running)} running"
        if bad:
            status += f" · [red]{bad} not ok[/]"
        if self.counts["elsewhere"]:
            status += f" · {self.counts['elsewhere']} elsewhere"
        self._bar.update(self._task, completed=self.finished, status=status)
        self._bar.refresh()
