"""matplotlib for the report: the non-interactive Agg backend, set once, on first use.

`plt` stands in for matplotlib.pyplot and imports it when first touched, so importing a
drawing module (which registers its plot kinds, kinds.py) costs nothing until a figure
is drawn.
"""
from __future__ import annotations

import importlib


class _Pyplot:
    _module = None

    def __getattr__(self, name: str):
        if _Pyplot._module is None:
            import matplotlib
            matplotlib.use("Agg")
            _Pyplot._module = importlib.import_module("matplotlib.pyplot")
        return getattr(_Pyplot._module, name)


plt = _Pyplot()
