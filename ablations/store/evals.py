"""runs/<id>/evals/<NAME>.json: post-hoc evaluations of a finished run (see
ablations/evalspec.py): {name, spec, run_id, config, metrics, samples, wall_s,
finished_at}, written atomically."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .files import Unreadable, atomic_write_json, read_json

_EVALS = "evals"


def eval_path(run_path: Path, name: str) -> Path:
    return Path(run_path) / _EVALS / f"{name}.json"


def write_eval(run_path: Path, name: str, data: dict) -> None:
    atomic_write_json(eval_path(run_path, name), data)


def read_evals(run_path: Path) -> dict[str, dict]:
    """NAME -> stored evaluation; raises Unreadable for a damaged one."""
    folder = Path(run_path) / _EVALS
    out = {}
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = read_json(f)
        if not isinstance(data, dict):
            raise Unreadable(f, "expected a JSON object")
        out[f.stem] = data
    return out


def eval_is_current(run_path: Path, name: str, spec: dict) -> bool:
    """Stored, readable, and computed for this very spec."""
    try:
        data = read_json(eval_path(run_path, name))
    except (FileNotFoundError, Unreadable):
        return False
    canonical = lambda s: json.dumps(s, sort_keys=True, default=str)
    return isinstance(data, dict) and canonical(data.get("spec")) == canonical(spec)


def eval_metrics(evals: dict[str, dict]) -> dict[str, Any]:
    """{<metric>@<NAME>: value}: the report's columns. A metric that names its own length
    (`tps_cache@256`, from a decode_speed evaluation) keeps its name."""
    return {k if "@" in k else f"{k}@{name}": math.nan if v is None else v
            for name, data in evals.items() for k, v in (data.get("metrics") or {}).items()}
