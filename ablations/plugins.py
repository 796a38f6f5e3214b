"""Plugin modules register extra variants (and tasks) when imported."""
from __future__ import annotations

import importlib
import os
import sys

from transformer.validation import ConfigError

PLUGINS_ENV = "ABLATE_PLUGINS"       # how a runner hands a grid's plugins to its run processes


def import_modules(modules) -> None:
    """Import each module, so its @REGISTRY.register classes exist before validation."""
    if modules and os.getcwd() not in sys.path:   # the `ablate` script's path lacks cwd
        sys.path.insert(0, os.getcwd())
    for module in modules or ():
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError("plugin", f"{module!r} cannot be imported: {e}") from None
        except Exception as e:            # e.g. a variant name registered twice
            raise ConfigError("plugin", f"{module!r} failed on import: "
                              f"{type(e).__name__}: {e}") from None


def import_from_env() -> None:
    """Import the plugins a runner named in ABLATE_PLUGINS (comma-separated)."""
    import_modules([m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m])
