"""Loading a grid: read its YAML, import its plugins, validate every key (validate.py).
Importing torch is left to whoever builds models: loading and validating need none."""
from __future__ import annotations

from pathlib import Path

from transformer.validation import ConfigError, check_known

from ..plugins import import_modules
from .spec import REQUIRED, TOP_KEYS, GridError, GridSpec, as_task, expect, read_yaml
from .validate import check_spec


def import_plugins(modules, path) -> None:
    """Import plugin modules (they register variants) before anything is validated;
    a grid's plugins are looked up beside the grid file too."""
    try:
        import_modules(modules, search=[Path(path).parent])
    except ConfigError as e:
        raise GridError(path, str(e)) from None


def load(path, plugins=()) -> GridSpec:
    """Read and validate a grid file (structure and names; cells come in `expand`)."""
    path = Path(path)
    spec = read_yaml(path)
    if not isinstance(spec, dict):
        raise GridError(path, f"expected a mapping of grid keys, got {type(spec).__name__}")
    try:
        for key in spec:
            if key not in TOP_KEYS:
                check_known("grid", key, TOP_KEYS, "key")
        for key in REQUIRED:
            if spec.get(key) in (None, "", {}) and not (key == "task" and spec.get("experiments")):
                raise ConfigError(key, "required")
        spec["task"] = as_task(spec.get("task")) or {}    # experiments may each name theirs
        spec.setdefault("seeds", [0])
        mods = expect(spec.get("plugins") or [], list, "plugins", "a list of module names")
        import_plugins(mods + list(plugins), path)
        grid = GridSpec(path, spec)
        check_spec(grid)
    except GridError:
        raise
    except ConfigError as e:
        raise GridError(path, str(e)) from None
    return grid
