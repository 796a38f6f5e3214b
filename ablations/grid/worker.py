"""A slot's persistent worker as the pool sees it: a process (`ablate _worker`,
training/fork_server.py) that imported torch and Lightning once and forks a child per
run; this side sends it run directories and reads back when each child started and
exited. Talking through pipes keeps this package free of the training code.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


class Worker:
    """One slot's worker process, as the pool sees it."""

    def __init__(self, env: dict, preexec=None, wait: bool = True):
        """Start the worker; with wait=False return at once (several slots' workers then
        import torch side by side) and let the first start() wait for it."""
        import subprocess
        self.proc = subprocess.Popen([sys.executable, "-m", "ablations", "_worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, preexec_fn=preexec)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = b""
        self.exited: dict[int, int] = {}
        self.lost: set[int] = set()              # runs that died with their worker
        self.ready = False
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Block until the worker has imported everything; RuntimeError if it died."""
        if self.ready:
            return
        if self._line(wait=True) != "ready":
            self.close()
            raise RuntimeError("the slot worker did not start (exit status "
                               f"{self.proc.poll()})")
        self.ready = True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, run_dir: Path) -> "WorkerRun":
        self.wait_ready()
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
                    self.lost.add(pid)
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
        if not self.ready:                   # started for a slot that never needed it
            self.proc.kill()
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

    @property
    def worker_died(self) -> str:
        """How the slot worker died when this run died with it; '' otherwise: the pool
        names a worker's death as such, not as the run's."""
        if self.pid not in self.worker.lost:
            return ""
        rc = self.worker.proc.poll()
        return (f"worker killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0
                else f"worker exit status {rc}")

    def wait(self) -> int:
        import time
        while (rc := self.poll()) is None:
            time.sleep(0.02)
        return rc
