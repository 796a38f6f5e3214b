"""A finished run's files, checked against what result.json says they were.

When a run finishes, result.json records `integrity`: the byte size and sha256 of
model.pt and the number of rows and the last step of metrics.csv. Readers (the report,
the runner, post-hoc evaluations) compare the files with it, so that a truncated curve
or damaged weights are named instead of silently averaged or loaded. A result.json
written before these fields existed has nothing to compare with: valid and unchecked.

Every problem is one line naming the file and what to do about it.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .layout import METRICS, MODEL

KEY = "integrity"
# hashing a large model.pt on every report and rerun would cost seconds: memoised per
# (path, size, mtime), so a file is hashed again only when it changed
_HASHES: dict[tuple[str, int, int], str] = {}


def record(run_path: Path) -> dict:
    """What the run's files are now (those present), for result.json."""
    run_path = Path(run_path)
    out: dict = {}
    metrics = run_path / METRICS
    if metrics.is_file():
        out["metrics_rows"], out["metrics_last_step"] = metrics_shape(metrics.read_bytes())
    model = run_path / MODEL
    if model.is_file():
        out["model_bytes"] = model.stat().st_size
        out["model_sha256"] = file_sha256(model)
    return out


def metrics_shape(data: bytes) -> tuple[int, int | None]:
    """(complete data rows, step of the last one) of metrics.csv's bytes."""
    lines = data.split(b"\n")[1:-1]           # the header, and what follows the last \n
    last = lines[-1].split(b",", 1)[0] if lines else b""
    return len(lines), int(last) if last.isdigit() else None


def file_sha256(path: Path) -> str:
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        with open(path, "rb") as f:
            _HASHES[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _HASHES[key]


def retrain_hint(run_path: Path) -> str:
    return f"delete {run_path} to retrain it (or rerun `ablate run` with --retrain-damaged)"


def metrics_problem(run_path: Path, result: dict) -> str | None:
    """Why metrics.csv does not match result.json, or None (also when unrecorded)."""
    rec = result.get(KEY) or {}
    if "metrics_rows" not in rec:
        return None
    path = Path(run_path) / METRICS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"{path}: missing (result.json records {rec['metrics_rows']} rows); " \
               f"{retrain_hint(run_path)}"
    rows, last = metrics_shape(data)
    cut = bool(data) and not data.endswith(b"\n")
    if rows == rec["metrics_rows"] and last == rec.get("metrics_last_step") and not cut:
        return None
    what = "truncated" if rows < rec["metrics_rows"] or cut else "changed"
    return (f"{path}: {what} ({rows} complete rows, last step {last}; result.json records "
            f"{rec['metrics_rows']}, last step {rec.get('metrics_last_step')}); "
            f"{retrain_hint(run_path)}")


def model_problem(run_path: Path, result: dict, data: bytes | None = None) -> str | None:
    """Why model.pt does not match result.json, or None (also when unrecorded, or absent:
    a results folder is committed and shared without its weights, by design; whoever
    needs them gets FileNotFoundError from read_model). `data`: the file's bytes when the
    caller has read them already."""
    rec = result.get(KEY) or {}
    if "model_bytes" not in rec:
        return None
    path = Path(run_path) / MODEL
    try:
        size = len(data) if data is not None else path.stat().st_size
    except FileNotFoundError:
        return None
    if size != rec["model_bytes"]:
        return (f"{path}: {'truncated' if size < rec['model_bytes'] else 'changed'} "
                f"({size} bytes, result.json records {rec['model_bytes']}); "
                f"{retrain_hint(run_path)}")
    digest = hashlib.sha256(data).hexdigest() if data is not None else file_sha256(path)
    if rec.get("model_sha256") not in (None, digest):
        return f"{path}: damaged (its sha256 differs from result.json's); " \
               f"{retrain_hint(run_path)}"
    return None


def problems(run_path: Path, result: dict) -> list[str]:
    """Every mismatch between a finished run's files and its result.json."""
    return [p for p in (metrics_problem(run_path, result), model_problem(run_path, result))
            if p]
