"""Plugin modules register extra variants (and tasks) when imported."""
from __future__ import annotations

import importlib
import os
import sys

from transformer.config import ConfigError


def import_plugins(modules) -> None:
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
