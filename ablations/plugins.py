"""Plugin modules register extra variants (and tasks) when imported.

A plugin is named as a module (`my_variants`, `pkg.variants`) or as a file
(`my_variants.py`, `plugins/extra.py`). Either is looked up in the working directory
first, then in each `search` folder (a grid's plugins next to the grid file). Runs get
the module names (`names`), which import in any process once the plugin's folder is on
its path (grid/pool.py hands it down).
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from transformer.validation import ConfigError

PLUGINS_ENV = "ABLATE_PLUGINS"       # how a runner hands a grid's plugins to its run processes

RESOLVED: dict[str, str] = {}        # what the user wrote -> the module name it imported as


def import_modules(specs, search=()) -> list[str]:
    """Import each plugin, so its @REGISTRY.register classes exist before validation;
    returns the module names."""
    names = []
    for spec in specs or ():
        name = _locate(str(spec), [Path.cwd(), *map(Path, search)])
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError("plugin", f"{spec!r} cannot be imported: {e}") from None
        except Exception as e:            # e.g. a variant name registered twice
            raise ConfigError("plugin", f"{spec!r} failed on import: "
                              f"{type(e).__name__}: {e}") from None
        RESOLVED[str(spec)] = name
        names.append(name)
    return names


def names(specs) -> list[str]:
    """The module names of already imported plugins, in order, without repeats."""
    return list(dict.fromkeys(RESOLVED.get(str(s), str(s)) for s in specs))


def _locate(spec: str, folders: list[Path]) -> str:
    """The module name to import, with the folder that holds it put on sys.path."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        for folder in folders:
            path = (folder / spec).resolve()
            if path.is_file():
                _on_path(path.parent)
                return path.stem
        raise ConfigError("plugin", f"{spec!r}: no such file in "
                          f"{' or '.join(str(f) for f in dict.fromkeys(folders))}")
    top = spec.split(".")[0]
    for folder in folders:                # the `ablate` script's path lacks the cwd
        if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
            _on_path(folder.resolve())
            return spec
    return spec                           # an installed module, or an ImportError to report


def _on_path(folder: Path) -> None:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def import_from_env() -> None:
    """Import the plugins a runner named in ABLATE_PLUGINS (comma-separated)."""
    import_modules([m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m])


def add_plugin_option(parser, required: bool = False) -> None:
    """`--plugin MODULE_OR_FILE`, repeatable: the same option in every command."""
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        required=required, help="a module or .py file that registers "
                        "variants or tasks, imported first (repeatable)")
