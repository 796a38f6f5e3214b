"""A tiny name -> class registry, one per kind of architectural choice.

A new variant is one decorated class::

    @POSITIONAL.register("xpos")
    class XPos(PositionalEncoding): ...
"""
from __future__ import annotations

from .validation import unknown


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str):
        def deco(cls):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered "
                                 f"(by {self._entries[name].__qualname__})")
            self._entries[name] = cls
            cls.registry_name = name
            return cls
        return deco

    def get(self, name: str) -> type:
        if name not in self._entries:
            raise KeyError(self.unknown_message(name))
        return self._entries[name]

    def unknown_message(self, name) -> str:
        return unknown(self.kind, name, self.names())

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self.names())})"


ARCH = Registry("arch")
POSITIONAL = Registry("pos")
ATTN_SCALE = Registry("attn_scale")
NORM = Registry("norm")
PLACEMENT = Registry("norm_placement")
FFN = Registry("ffn")

# ModelConfig field name -> the registry that holds its valid values.
registries: dict[str, Registry] = {
    "arch": ARCH,
    "pos": POSITIONAL,
    "attn_scale": ATTN_SCALE,
    "norm": NORM,
    "norm_placement": PLACEMENT,
    "ffn": FFN,
}
