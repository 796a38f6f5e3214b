"""One run's child process, as the pool sees it: its command, environment, start,
outcome and end. A child forked by the slot's persistent worker (worker.py) and a fresh
`ablate _run_one` process look the same from here.

A child that crashes without writing result.json (segfault, import error) is recorded
as failed, with its exit status and the tail of its stderr, so one bad run never stops
the grid. A child killed from outside (SIGKILL, the OOM killer) or whose slot worker
died is interrupted, not failed: nothing is written and the next `ablate run` resumes it
from its checkpoint, as after Ctrl-C. Children die with the runner (procs.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import store
from ..plugins import PLUGINS_ENV
from ..procs import die_with_parent

REPO = Path(__file__).resolve().parents[2]
# signals that come from outside the run (the OOM killer sends SIGKILL); a SIGSEGV or
# SIGABRT is the run's own crash
INTERRUPTIONS = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
RESUMES = "the next `ablate run` resumes it from its checkpoint"


def child_command(run_dir: Path) -> list[str]:
    hook = os.environ.get("ABLATE_RUN_ONE_CMD")
    base = shlex.split(hook) if hook else [sys.executable, "-m", "ablations", "_run_one"]
    return base + [str(run_dir)]


def child_env(overlay: dict, plugins: list[str]) -> dict:
    env = {**os.environ, **overlay, "TOKENIZERS_PARALLELISM": "false"}
    # the child must import this very code (and the grid's plugins) whatever its cwd
    paths = [str(REPO)] + plugin_roots(plugins) + [env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, paths)))
    if plugins:
        env[PLUGINS_ENV] = ",".join(plugins)     # _run_one imports them first
    return env


def plugin_roots(plugins: list[str]) -> list[str]:
    """The sys.path entry each (already imported) plugin module was found under."""
    roots = []
    for name in plugins:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            up = name.count(".") + (Path(path).name == "__init__.py")
            roots.append(str(Path(path).resolve().parents[up]))
    return roots


@dataclasses.dataclass
class Child:
    run_dir: Path
    proc: subprocess.Popen
    err_offset: int
    started: float


def launch(run_dir: Path, overlay: dict, plugins: list[str], worker=None) -> Child:
    """Start one run: forked by the slot's worker when given, else a fresh process."""
    with open(run_dir / store.STDERR_LOG, "ab") as err:   # stdout too: one log per run
        err.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} attempt\n".encode())
        err.flush()
        offset = err.tell()
        if worker is not None:
            return Child(run_dir, worker.start(run_dir), offset, time.monotonic())
        proc = subprocess.Popen(child_command(run_dir), env=child_env(overlay, plugins),
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                preexec_fn=die_with_parent)
        return Child(run_dir, proc, offset, time.monotonic())


def forkable(run) -> bool:
    """Can a persistent worker fork this run? Not when it starts processes of its own
    (Lightning re-executes the command line for DDP), nor under the test hook."""
    train = run.config["train"]
    return ("ABLATE_RUN_ONE_CMD" not in os.environ and train.get("devices") in (1, "1")
            and train.get("strategy", "auto") == "auto")


class Workers:
    """One persistent worker per slot, started on first use and again if it died."""

    def __init__(self, slots, plugins: list[str], enabled: bool = True):   # pool.Slots
        self.slots, self.plugins, self.enabled = slots, plugins, enabled
        self.alive: dict[int, object] = {}

    def get(self, slot: int, run):
        if not self.enabled or not forkable(run):
            return None
        if not self.alive:            # first use: every slot's worker imports at once
            self.start_all()
        worker = self.alive.get(slot)
        if worker is None or not worker.alive():
            worker = self._start(slot)
        if worker is None:
            return None                               # fall back to a fresh process
        try:
            worker.wait_ready()
        except RuntimeError:
            self.alive.pop(slot, None)
            return None
        return worker

    def start_all(self) -> None:
        """Start every slot's worker without waiting: they import torch and Lightning
        side by side (and beside the runner, when it calls this before expanding)."""
        if self.enabled:
            for slot in range(len(self.slots.envs)):
                if slot not in self.alive:
                    self._start(slot)

    def _start(self, slot: int):
        from .worker import Worker
        try:
            self.alive[slot] = Worker(child_env(self.slots.envs[slot], self.plugins),
                                      preexec=die_with_parent, wait=False)
        except OSError:
            self.alive.pop(slot, None)
        return self.alive.get(slot)

    def close(self) -> None:
        for worker in self.alive.values():
            worker.close()
        self.alive.clear()


def outcome(child: Child, rc: int, signals_interrupt: bool = False) -> tuple[str, str]:
    """(status, reason) of a child that exited with rc; writes result.json on a crash.

    status is ok / diverged / failed, 'elsewhere' when another process holds the run,
    or 'interrupted': killed from outside (SIGKILL, the OOM killer, SIGTERM), or its
    slot worker died, or any signal when signals_interrupt (SLURM preemption). An
    interrupted run writes nothing: the next `ablate run` resumes it from its checkpoint.
    """
    if store.is_done(child.run_dir):
        return store.status_of(child.run_dir)
    if rc == store.EXIT_BUSY:
        return "elsewhere", "another process holds the run's lock"
    if getattr(child.proc, "worker_died", False):
        return "interrupted", f"its slot worker died ({child.proc.worker_died}); {RESUMES}"
    if rc < 0 and (signals_interrupt or -rc in INTERRUPTIONS):
        return "interrupted", f"killed by {signal.Signals(-rc).name}; {RESUMES}"
    how = (f"killed by {signal.Signals(-rc).name}" if rc < 0 else
           f"exit code {rc} without result.json" if rc in (0, 1) else f"exit code {rc}")
    reason = f"crashed ({how})"
    tail = stderr_tail(child.run_dir / store.STDERR_LOG, child.err_offset)
    if tail:
        reason += "; stderr tail:\n" + tail
    try:
        with store.run_lock(child.run_dir) as held:
            if not held:                  # another runner started it after our child died
                return "elsewhere", "another process holds the run's lock"
            if not store.is_done(child.run_dir):
                store.write_result(child.run_dir, status="failed", reason=reason,
                                   config=_config_or_none(child.run_dir), exit_code=rc)
    except OSError as e:                  # an unwritable run folder: say so, go on
        return "failed", f"{reason.splitlines()[0]}; not recorded: {os_error(e)}"
    return store.status_of(child.run_dir)


def _config_or_none(run_dir: Path) -> dict | None:
    try:
        return store.read_config(run_dir)
    except (FileNotFoundError, store.Unreadable):
        return None


def stderr_tail(path: Path, offset: int, lines: int = 25, chars: int = 3000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def lock_held(run_dir: Path) -> bool:
    with store.run_lock(run_dir) as got:
        return not got


def os_error(e: OSError) -> str:
    """One line: the path and why (read-only file system, no space left, permission)."""
    path = e.filename if e.filename is not None else ""
    return f"{path}: {e.strerror or e}" if path else str(e.strerror or e)


def kill(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.proc.pid, signal.SIGKILL)   # the run and anything it spawned
    child.proc.wait()
