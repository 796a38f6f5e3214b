"""A run's outcome: result.json (written once, last), its status and the exit codes.

One `write_result` serves the trainer (a finished, diverged or raised run) and the
runner's pool (a child that died without writing one), so every result.json carries
the same keys, provenance included.
"""
from __future__ import annotations

import contextlib
import fcntl
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

from . import integrity
from .evals import eval_path
from .files import Unreadable, atomic_write_json, read_json
from .layout import LOCK, METRICS, MODEL, RESULT, checkpoint_path, runs_dir

STATUSES = ("ok", "diverged", "failed")
# read, never written: result.json unreadable, or a file that no longer matches it
DAMAGED = "damaged"
# `ablate train` / `_run_one`: ok; diverged or failed (recorded); bad input; another
# process holds the run's lock (nothing done)
EXIT_OK, EXIT_FAILED, EXIT_BUSY = 0, 1, 3


def exit_code(status: str) -> int:
    """A run that finished or diverged is a result (a divergence is what some ablations
    show); only a crash is a failure."""
    return EXIT_OK if status in ("ok", "diverged") else EXIT_FAILED


def is_done(run_path: Path) -> bool:
    return (Path(run_path) / RESULT).exists()


def read_result(run_path: Path) -> dict:
    """result.json; FileNotFoundError when the run is unfinished, Unreadable if damaged."""
    res = read_json(Path(run_path) / RESULT)
    if not isinstance(res, dict):
        raise Unreadable(Path(run_path) / RESULT, f"expected a JSON object, got "
                                                   f"{type(res).__name__}")
    return res


def status_of(run_path: Path, verify: bool = False) -> tuple[str, str]:
    """(status, reason) of a run; ('pending', '') when it has no result yet. A damaged
    result.json reads as damaged, with the reason; with `verify`, so does a run whose
    metrics.csv or model.pt no longer matches its result.json (integrity.py)."""
    try:
        res = read_result(run_path)
    except FileNotFoundError:
        return "pending", ""
    except Unreadable as e:
        return DAMAGED, f"{e}; {integrity.retrain_hint(run_path)}"
    bad = integrity.problems(run_path, res) if verify else []
    if bad:
        return DAMAGED, "; ".join(bad)
    return str(res.get("status", "ok")), str(res.get("reason") or "")


def write_result(run_path: Path, *, status: str, reason: str | None, config: dict | None,
                 metrics: dict | None = None, **details) -> dict:
    """Write result.json atomically: status (ok / diverged / failed), why, the resolved
    config, metrics, cost figures passed as `details` (params, steps, tokens, ...), and
    provenance (git commit, package versions, time)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    result = {"run_id": Path(run_path).name, "status": status, "reason": reason,
              "config": config, "metrics": dict(metrics or {}), **details,
              "git_sha": git_sha(), "versions": versions(),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_json(Path(run_path) / RESULT, result)
    return result


def clear_result(run_path: Path) -> None:
    """Forget a run's outcome so that it runs again (`ablate run --retry-failed`)."""
    (Path(run_path) / RESULT).unlink(missing_ok=True)


def clear_run(run_path: Path) -> None:
    """Forget everything a damaged run computed so that it trains again from step 0
    (`ablate run --retrain-damaged`): its checkpoint may be as damaged as its files.
    config.json and the logs stay."""
    run_path = Path(run_path)
    for name in (RESULT, METRICS, MODEL):
        (run_path / name).unlink(missing_ok=True)
    for folder in (checkpoint_path(run_path).parent, eval_path(run_path, "_").parent):
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def run_lock(run_path: Path):
    """Try the run's lock without waiting; yields whether this process got it. The lock
    dies with its process, so a killed runner never leaves a run locked."""
    run_path = Path(run_path)
    run_path.mkdir(parents=True, exist_ok=True)
    with open(run_path / LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def stale_runs(grid_path: Path, keep) -> list[Path]:
    """Run folders of a grid folder whose id is not in `keep` (the grid's runs as it now
    stands): an earlier version of the grid, or other --seeds / --set. The report never
    reads them; they are kept until asked (`ablate run --prune`)."""
    folder = runs_dir(grid_path)
    keep = set(keep)
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in keep) \
        if folder.is_dir() else []


def remove_run(run_path: Path) -> bool:
    """Delete a run folder unless another process holds its lock (it is training);
    whether it was deleted."""
    with run_lock(run_path) as mine:
        if mine:
            shutil.rmtree(run_path)
    return mine


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict:
    """From package metadata: the pool's crash path must not pay for importing torch."""
    out = {"python": platform.python_version()}
    for name in ("torch", "lightning"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "n/a"
    return out
