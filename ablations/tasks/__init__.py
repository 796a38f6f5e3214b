"""Tasks: generated (deterministic from a seed) and real text. See base.py for the contract.

`TASKS` and the arch checks (registry.py) need no torch: the names and declarations of
the shipped tasks come from their catalogue, and `TASKS.get(name)` imports the task's
module. The other names here come from base.py on first use.
"""
from __future__ import annotations

import importlib

from .registry import TASKS, check_arch, suited_archs, suits  # noqa: F401

_BASE = ("IGNORE", "Task", "TaskParams", "build_task", "choice", "make_params",
         "sequence_metrics", "task_of")


def __getattr__(name: str):
    if name in _BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
