"""A tiny name -> class registry, one per kind of architectural choice.

A new variant is one decorated class::

    @POSITIONAL.register("xpos")
    class XPos(PositionalEncoding): ...

after which `ModelConfig(pos="xpos")` builds it (load it with `ablate --plugin MODULE`).

The variant protocol
--------------------
Every registered class is built as ``Cls(cfg)`` with the ModelConfig, and may set
three class attributes, read from the class before any model exists:

  ignores        fields this choice makes irrelevant: an LSTM ignores `pos`,
                 norm_placement="none" ignores `norm`. ModelConfig.ignored_fields()
                 collects them; the grid runner drops them from the run's config, so
                 such cells train once instead of once per ignored value.
  check_config   ``check_config(cfg) -> None`` (a staticmethod): extra validation,
                 raising ConfigError(field, message) (RoPE needs an even head dim).
                 Skipped when another choice ignores this field.
  default_causal arch only: the `causal` a config gets when it leaves it unset
                 (True when absent; encoders say False).

What each kind must do (its base class documents the details):

  pos            PositionalEncoding (positional.py): any of the hooks
                 embed(x, start), rotate(q, k, q_start, k_start),
                 bias(Tq, Tk, q_start, k_start); exact at any start (KV cache).
  attn_scale     AttentionScale (attention.py): forward(q) -> (q, scale).
  norm           a module (B, T, D) -> (B, T, D) (norm.py).
  norm_placement Placement (norm.py): forward(x, sublayer) -> residual stream, and
                 `final_norm` when the stack must end with a norm.
  ffn            FeedForward (ffn.py): forward(x) (B, T, D) -> (B, T, D).
  arch           SequenceModel (model.py): forward, hidden (for the fused loss),
                 blocks (per-layer diagnostics), input_keys (which batch tensors
                 forward takes), and init_state / decode / full_logits (generation).
Changing a registered name, or what a class computes, changes the meaning of
recorded results: add a new name instead.
"""
from __future__ import annotations

from typing import Callable, Iterator

from .validation import unknown


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
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

    def unknown_message(self, name: object) -> str:
        return unknown(self.kind, name, self.names())

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
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
