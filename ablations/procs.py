"""Child processes that never outlive the command that started them.

Every child the runner starts (a run, a slot's worker, a post-hoc evaluation) calls
`die_with_parent` between fork and exec: it gets a session of its own, so that Ctrl-C
on the terminal reaches the runner only, which then stops its children itself, and the
kernel kills it (PR_SET_PDEATHSIG) should the runner die without that chance (SIGKILL,
the OOM killer). Without it an evaluation outlives an interrupted runner as an orphan.
"""
from __future__ import annotations

import os
import signal
import sys

_PRCTL = None
if sys.platform.startswith("linux"):
    import ctypes
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> None:          # runs in the child between fork and exec
    os.setsid()
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)         # PR_SET_PDEATHSIG
