"""The results store on disk. A run is done when its result.json exists; every
file a reader trusts is written atomically (temp file + os.replace)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

CONFIG = "config.json"
RESULT = "result.json"
METRICS = "metrics.csv"
CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
EVALS = "evals"                # runs/<id>/evals/<NAME>.json: post-hoc evaluations (evals.py)
LOCK = ".lock"
STATUSES = ("ok", "diverged", "failed")


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)               # mkstemp's 0600 would hide results from others
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def grid_dir(results: Path, grid: str) -> Path:
    return Path(results) / grid


def run_dir(results: Path, grid: str, run_id: str) -> Path:
    return Path(results) / grid / "runs" / run_id


def is_done(run_dir: Path) -> bool:
    return (Path(run_dir) / RESULT).exists()


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Try the run's lock without waiting; yields whether this process got it. The lock
    dies with its process, so a killed runner never leaves a run locked."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
