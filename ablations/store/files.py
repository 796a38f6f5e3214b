"""Atomic writes and careful reads of the store's text files."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class Unreadable(Exception):
    """A store file exists but cannot be read (truncated, hand-edited, not JSON/CSV).
    str() names the file and the problem in one line."""

    def __init__(self, path: Path, problem: str):
        self.path = Path(path)
        super().__init__(f"{path}: {problem}")


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
    """The parsed file; FileNotFoundError when absent, Unreadable when damaged."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:     # JSONDecodeError and UnicodeDecodeError too
        raise Unreadable(path, _problem(e)) from None


def _problem(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"unreadable ({text})"
