"""Child processes that never outlive the command that started them.

Every child the runner starts (a run, a slot's worker, a post-hoc evaluation) calls
`die_with_parent` between fork and exec: it gets a session of its own, so that Ctrl-C
on the terminal reaches the runner only, which then stops its children itself, and the
kernel kills it (PR_SET_PDEATHSIG) should the runner die without that chance (SIGKILL,
the OOM killer). Without it an evaluation outlives an interrupted runner as an orphan.

SIGTERM unwinds the runner like Ctrl-C (`on_sigterm` raises `Terminated` where the main
thread is). An exception raised inside a finalizer is printed and dropped by Python, so
the signal is also remembered: a wait on children (`wait_all`) and the command's exit
status (cli.py) see it even when the exception was lost.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

_PRCTL = None
if sys.platform.startswith("linux"):
    import ctypes
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> None:          # runs in the child between fork and exec
    os.setsid()
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)         # PR_SET_PDEATHSIG


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that clean-up runs as after Ctrl-C."""


_signalled = False


def on_sigterm(signum, frame):
    global _signalled
    _signalled = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)     # a second one must not cut clean-up
    raise Terminated()


def check_terminated() -> None:
    """Raise Terminated if a SIGTERM arrived, whether or not its exception reached the
    caller."""
    if _signalled:
        raise Terminated()


def wait_all(procs: list[subprocess.Popen], poll_s: float = 0.2) -> None:
    """Wait for every child, raising Terminated once a SIGTERM has arrived."""
    for p in procs:
        while True:
            check_terminated()
            try:
                p.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
