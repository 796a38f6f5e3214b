"""A readable Transformer core in which every architectural choice is a named,
pluggable component. Pure PyTorch; never imports lightning.

Importing the package is free: `transformer.validation`, `transformer.registry` and
`transformer.config` need no torch (the registries know the built-in names from their
catalogue), and the names below import the model on first use.
"""
from __future__ import annotations

import importlib

__all__ = ["ModelConfig", "ConfigError", "SequenceModel", "build_model", "registries"]

_HOME = {"ModelConfig": "config", "ConfigError": "validation", "registries": "registry",
         "SequenceModel": "model", "build_model": "model"}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
