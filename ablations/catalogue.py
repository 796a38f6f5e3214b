"""Writes the registries' catalogues (transformer/catalog.json, ablations/tasks/
catalog.json) from the built-in classes: `python -m ablations.catalogue`.

The catalogues let grid validation, `ablate list` and the report know every built-in
name and what it declares without importing torch (transformer/registry.py). A test
compares them with the classes, so a new or changed variant or task fails until this
is rerun.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import sys

import transformer
from transformer.registry import registries

from . import tasks
from .tasks.registry import TASKS


def built_in() -> dict:
    """{catalogue path: {kind: {name: entry}}} with only the shipped modules imported."""
    for package in (transformer, tasks):
        for mod in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{mod.name}")
    out: dict = {}
    for reg in [*registries.values(), TASKS]:
        out.setdefault(reg.catalogue, {})[reg.kind] = reg.built_in()
    return out


def render(entries: dict) -> str:
    return json.dumps(entries, indent=1) + "\n"


def main() -> int:
    for path, entries in built_in().items():
        path.write_text(render(entries))
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
