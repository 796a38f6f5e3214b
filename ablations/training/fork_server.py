"""The persistent slot worker's process: it imports torch and Lightning once, then forks
one child per run (the grid's side of it, the pool's handle, is grid/worker.py).

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
           "ablations.training.loggers", "ablations.training.measuring")


def add_arguments(p) -> None:
    """No arguments: run directories come on stdin."""


def main(args) -> int:
    from transformer.registry import registries

    from .. import plugins
    from ..tasks import TASKS
    from .run import imports_outside_gc

    plugins.import_from_env()
    with imports_outside_gc():               # what every run's own start-up would import
        import importlib
        for name in PRELOAD:
            importlib.import_module(name)
        for registry in [*registries.values(), TASKS]:
            registry.load_all()
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
        from .run import run_one
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
