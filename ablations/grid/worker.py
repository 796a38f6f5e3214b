"""Persistent slot workers: each slot imports torch and Lightning once, then forks one
child per run.

`ablate _worker` (started by the pool, one per slot, in the slot's environment) imports
everything a run needs and runs nothing. It then reads run directories from stdin, one
per line. For each it forks a child that starts a session of its own (so the pool can
kill it and anything it spawned), dies with the worker (PR_SET_PDEATHSIG), writes its
output to the run's stderr.log and calls the `run_one` a fresh `ablate _run_one` process
would, then exits with its code. The worker answers `started PID` and, once the child has
exited, `exited PID RC` (RC negative: killed by that signal).

Why fork: the child is a copy of a process that has imported everything but computed
nothing, so a run starts in milliseconds instead of the ~2.5 s of a fresh interpreter;
it gets the very numbers a fresh process would (no torch op, thread pool or CUDA context
exists before the fork, and every run seeds itself); a crash or a kill takes down only
the child; and the child's memory goes back to the system when it exits, so the worker
does not grow from run to run. Runs that start processes of their own (DDP, several
devices) keep the fresh-process path: Lightning re-executes the command line there.
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path

PRELOAD = ("torch", "lightning", "ablations.training.module", "ablations.training.run",
           "ablations.training.loggers", "ablations.training.measure", "ablations.tasks")


def add_arguments(p) -> None:
    """No arguments: run directories come on stdin."""


def main(args) -> int:
    from ..plugins import import_plugins
    from ..training.run import imports_outside_gc

    import_plugins([m for m in os.environ.get("ABLATE_PLUGINS", "").split(",") if m])
    with imports_outside_gc():               # what every run's own start-up would import
        import importlib
        for name in PRELOAD:
            importlib.import_module(name)
    say("ready")
    for line in sys.stdin:
        run_dir = line.strip()
        if not run_dir:
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(Path(run_dir))             # never returns
        say(f"started {pid}")
        _, status = os.waitpid(pid, 0)
        say(f"exited {pid} {os.waitstatus_to_exitcode(status)}")
    return 0


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _child(run_dir: Path) -> None:
    code = 1
    try:
        os.setsid()
        if sys.platform.startswith("linux"):
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        from .. import store
        log = os.open(run_dir / store.STDERR_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdin = open(os.devnull)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from ..training.run import run_one
        code = run_one(run_dir)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:                    # the pool reads the traceback from the log
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# ------------------------------------------------------------------- the pool's side
class Worker:
    """One slot's worker process, as the pool sees it."""

    def __init__(self, env: dict, preexec=None):
        import subprocess
        self.proc = subprocess.Popen([sys.executable, "-m", "ablations", "_worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, preexec_fn=preexec)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = b""
        self.exited: dict[int, int] = {}
        if self._line(wait=True) != "ready":
            self.close()
            raise RuntimeError("the slot worker did not start (exit status "
                               f"{self.proc.poll()})")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, run_dir: Path) -> "WorkerRun":
        self.proc.stdin.write(f"{run_dir}\n".encode())
        self.proc.stdin.flush()
        while True:
            line = self._line(wait=True)
            if line is None:
                raise RuntimeError("the slot worker died before starting the run")
            if line.startswith("started "):
                return WorkerRun(self, int(line.split()[1]))
            self._note(line)

    def poll(self, pid: int) -> int | None:
        """The run's exit code once the worker saw it exit; -9 when the worker died."""
        while pid not in self.exited:
            line = self._line(wait=False)
            if line is None and self.alive():
                break
            if line is None:
                line = self._line(wait=False)      # written just before the worker exited
                if line is None:
                    self.exited[pid] = -signal.SIGKILL   # the child died with its worker
                    break
            self._note(line)
        return self.exited.get(pid)

    def _note(self, line: str) -> None:
        if line.startswith("exited "):
            _, pid, rc = line.split()
            self.exited[int(pid)] = int(rc)

    def _line(self, wait: bool) -> str | None:
        """The worker's next whole line; None when there is none yet (or, with wait,
        when the worker has exited)."""
        import select
        while b"\n" not in self.buffer:
            if wait:
                select.select([self.fd], [], [], 1.0)
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                if wait and self.alive():
                    continue
                return None
            if not chunk:                          # end of file: the worker has exited
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        import contextlib
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


class WorkerRun:
    """A run forked by a worker, with the part of Popen's interface the pool uses."""

    def __init__(self, worker: Worker, pid: int):
        self.worker = worker
        self.pid = pid

    def poll(self) -> int | None:
        return self.worker.poll(self.pid)

    def wait(self) -> int:
        import time
        while (rc := self.poll()) is None:
            time.sleep(0.02)
        return rc
