"""Progress inside one run, on stderr: step, loss, speed and ETA.

On a terminal one line redraws in place about twice a second. Elsewhere (a grid run's
stderr.log, CI logs, pipes) a plain line is written every ABLATE_PROGRESS_S seconds
(default 30), so a log shows a long run is alive without drowning in lines. It reads
the loss only when it prints (one device sync per line, not per step) and touches no
RNG or file of the run, so metrics.csv is the same with and without it.
"""
from __future__ import annotations

import os
import sys
import time

from lightning.pytorch.callbacks import Callback

LIVE_EVERY_S = 0.5


def log_every_s() -> float:
    return float(os.environ.get("ABLATE_PROGRESS_S", 30))


def fmt_duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else \
        f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def progress_line(step: int, total: int, loss: float | None, elapsed_s: float,
                  steps_done: int) -> str:
    """'step 250/1000 (25%)  loss 2.3456  12.5 steps/s  ETA 1m00s'; speed and ETA from
    the steps this process took (a resumed run's earlier steps took no time here)."""
    line = f"step {step}/{total} ({100 * step // max(1, total)}%)"
    if loss is not None:
        line += f"  loss {loss:.4f}"
    if steps_done > 0 and elapsed_s > 0:
        rate = steps_done / elapsed_s
        line += f"  {rate:.3g} steps/s  ETA {fmt_duration((total - step) / rate)}"
    return line


class RunProgress(Callback):
    @property
    def stream(self):
        return self._stream or sys.stderr

    def __init__(self, stream=None, live: bool | None = None, every_s: float | None = None,
                 clock=time.monotonic):
        self._stream = stream          # None: sys.stderr when written (ddp_spawn pickles us)
        self.live = self.stream.isatty() if live is None else live
        self.every_s = every_s if every_s is not None else \
            LIVE_EVERY_S if self.live else log_every_s()
        self.clock = clock
        self._start = self._last = None
        self._first_step = 0

    def on_train_start(self, trainer, pl_module):
        self._start = self._last = self.clock()
        self._first_step = trainer.global_step            # a resumed run starts here

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = self.clock()
        if not trainer.is_global_zero or now - self._last < self.every_s:
            return
        self._last = now
        self._print(trainer, _loss_of(outputs), now)

    def on_train_end(self, trainer, pl_module):
        if self.live and trainer.is_global_zero and self._start is not None:
            self._print(trainer, None, self.clock())
            self.stream.write("\n")                         # the summary on a line of its own
            self.stream.flush()

    def _print(self, trainer, loss, now) -> None:
        line = progress_line(trainer.global_step, trainer.max_steps, loss, now - self._start,
                             trainer.global_step - self._first_step)
        self.stream.write(f"\r{line}\033[K" if self.live else line + "\n")
        self.stream.flush()


def _loss_of(outputs) -> float | None:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return None if loss is None else float(loss)
