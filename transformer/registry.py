"""A tiny name -> class registry, one per kind of architectural choice.

A new variant is one decorated class::

    @POSITIONAL.register("xpos")
    class XPos(PositionalEncoding): ...

after which `ModelConfig(pos="xpos")` builds it (load it with `ablate --plugin MODULE`).

The variant protocol
--------------------
Every registered class is built as ``Cls(cfg)`` with the ModelConfig, and declares what
it is through class attributes, read before any model exists (`Registry.info`):

  ignores        fields this choice makes irrelevant: an LSTM ignores `pos`,
                 norm_placement="none" ignores `norm`. ModelConfig.ignored_fields()
                 collects them; the grid runner drops them from the run's config, so
                 such cells train once instead of once per ignored value.
  check_config   ``check_config(cfg) -> None`` (a staticmethod): extra validation,
                 raising ConfigError(field, message) (RoPE needs an even head dim).
                 Skipped when another choice ignores this field.
  pos only:      bounded: True when the encoding has a table of `max_len` positions
                 and cannot embed a position past it (learned).
  arch only:     default_causal (the `causal` a config gets when it leaves it unset),
                 seq2seq (reads a source through an encoder: model(src, input)),
                 recurrent (a state carried step to step, no attention).

What each kind must do (its base class documents the details):

  pos            PositionalEncoding (positional.py): any of the hooks
                 embed(x, start), rotate(q, k, q_start, k_start),
                 bias(Tq, Tk, q_start, k_start); exact at any start (KV cache).
  attn_scale     AttentionScale (attention.py): forward(q) -> (q, scale).
  norm           a module (B, T, D) -> (B, T, D) (norm.py).
  norm_placement Placement (norm.py): forward(x, sublayer) -> residual stream, and
                 `final_norm` when the stack must end with a norm.
  ffn            FeedForward (ffn.py): forward(x) (B, T, D) -> (B, T, D).
  readout        Readout (readout.py): forward(h) (B, T, D) -> (B, T, D), what the
                 output head reads; declares generates=False when a prefix's output
                 is not the sequence's (no incremental decoding).
  arch           SequenceModel (model.py): forward, hidden (for the fused loss),
                 blocks (per-layer diagnostics), input_keys (which batch tensors
                 forward takes), and init_state / decode / full_logits (generation).
Changing a registered name, or what a class computes, changes the meaning of
recorded results: add a new name instead.

Knowing the names without importing torch
-----------------------------------------
The built-in variants live in modules that import torch (2+ s), yet validating a grid,
listing the variants and writing a report need only their names and declared
attributes. So each registry reads a catalogue (catalog.json beside its modules):
per built-in name, its module and class and the attributes above. `names()`, `info()`
and membership answer from it; `get()` imports the class's module on first use. The
catalogue is generated from the classes themselves (`python -m ablations.catalogue`)
and a test fails when it is stale, so the classes stay the one source of truth.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable, Iterator

from .validation import unknown

# what `info` reports for every kind, with the value a class that says nothing gets
COMMON = {"ignores": (), "check_config": False}


class Registry:
    def __init__(self, kind: str, catalogue: Path | None = None,
                 declares: dict[str, Any] | None = None):
        self.kind = kind
        self.catalogue = catalogue
        self.declares = {**COMMON, **(declares or {})}   # attribute -> default
        self._entries: dict[str, type] = {}
        self._declared: dict[str, dict] | None = None      # read on first use

    # -- registering ------------------------------------------------------------
    def register(self, name: str) -> Callable[[type], type]:
        def deco(cls):
            known = self._catalogue().get(name)
            home = f"{cls.__module__}:{cls.__qualname__}"
            if name in self._entries or (known is not None and known["class"] != home):
                where = self._entries[name].__qualname__ if name in self._entries \
                    else known["class"]
                raise ValueError(f"{self.kind} {name!r} is already registered (by {where})")
            self._entries[name] = cls
            cls.registry_name = name
            return cls
        return deco

    # -- looking up ---------------------------------------------------------------
    def get(self, name: str) -> type:
        if name not in self._entries:
            known = self._catalogue().get(name)
            if known is None:
                raise KeyError(self.unknown_message(name))
            importlib.import_module(known["class"].split(":")[0])   # registers it
        return self._entries[name]

    def load_all(self) -> None:
        """Import every catalogued class (a process that forks runs pays it once)."""
        for name in self.names():
            self.get(name)

    def info(self, name: str) -> dict[str, Any]:
        """The declared attributes of a variant (see the module docstring), from its
        class when loaded, else from the catalogue: no torch needed."""
        if name in self._entries:
            return self.describe(self._entries[name])
        known = self._catalogue().get(name)
        if known is None:
            raise KeyError(self.unknown_message(name))
        return {k: tuple(v) if isinstance(v, list) else v
                for k, v in known.items() if k in self.declares or k == "doc"}

    def describe(self, cls: type) -> dict[str, Any]:
        """A class's declared attributes, as the catalogue records them."""
        out: dict[str, Any] = {}
        for attr, default in self.declares.items():
            value = getattr(cls, attr, default)
            out[attr] = callable(value) if attr == "check_config" else \
                tuple(value) if isinstance(value, (list, tuple)) else value
        out["doc"] = " ".join((cls.__doc__ or "").split())
        return out

    def unknown_message(self, name: object) -> str:
        return unknown(self.kind, name, self.names())

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self._catalogue(), *self._entries]))

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._catalogue()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self.names())})"

    # -- the catalogue ------------------------------------------------------------
    def _catalogue(self) -> dict[str, dict]:
        if self._declared is None:
            self._declared = {}
            if self.catalogue is not None and self.catalogue.is_file():
                self._declared = json.loads(self.catalogue.read_text()).get(self.kind, {})
        return self._declared

    def built_in(self) -> dict[str, dict]:
        """Catalogue entries of every loaded class: what `python -m ablations.catalogue`
        writes, with only the built-in modules imported."""
        out = {}
        for name, cls in self._entries.items():
            out[name] = {"class": f"{cls.__module__}:{cls.__qualname__}",
                         **{k: list(v) if isinstance(v, tuple) else v
                            for k, v in self.describe(cls).items()}}
        return out


CATALOGUE = Path(__file__).with_name("catalog.json")
ARCH = Registry("arch", CATALOGUE, {"default_causal": True, "seq2seq": False,
                                    "recurrent": False})
POSITIONAL = Registry("pos", CATALOGUE, {"bounded": False})
ATTN_SCALE = Registry("attn_scale", CATALOGUE)
NORM = Registry("norm", CATALOGUE)
PLACEMENT = Registry("norm_placement", CATALOGUE)
FFN = Registry("ffn", CATALOGUE)
READOUT = Registry("readout", CATALOGUE, {"generates": True})

# ModelConfig field name -> the registry that holds its valid values.
registries: dict[str, Registry] = {
    "arch": ARCH,
    "pos": POSITIONAL,
    "attn_scale": ATTN_SCALE,
    "norm": NORM,
    "norm_placement": PLACEMENT,
    "ffn": FFN,
    "readout": READOUT,
}
