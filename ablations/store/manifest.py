"""A grid folder's manifest.json (its spec and runs) and each run's config.json."""
from __future__ import annotations

import json
from pathlib import Path

from .files import Unreadable, atomic_write_json, atomic_write_text, read_json
from .layout import CONFIG, MANIFEST


def write_manifest(grid_path: Path, manifest: dict) -> None:
    """Written only when its content changes: rerunning a finished grid writes nothing
    (and so works on a read-only results folder)."""
    # unsorted keys: the report lists axes and bundles in the order the grid gives them
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    path = Path(grid_path) / MANIFEST
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)


def read_manifest(grid_path: Path) -> dict:
    """FileNotFoundError when absent, Unreadable when damaged or not a manifest."""
    path = Path(grid_path) / MANIFEST
    manifest = read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("runs", []), list):
        raise Unreadable(path, "not a grid manifest (expected an object with a runs list)")
    return manifest


def write_config(run_path: Path, config: dict) -> None:
    """config.json, rewritten only when it differs: under one run id only execution
    settings (devices, threads) can."""
    path = Path(run_path) / CONFIG
    try:
        same = read_json(path) == json.loads(json.dumps(config))
    except (FileNotFoundError, Unreadable):
        same = False
    if not same:
        atomic_write_json(path, config)


def read_config(run_path: Path) -> dict:
    return read_json(Path(run_path) / CONFIG)
