"""ModelConfig: one flat, torch-free description of a model.

Categorical fields are strings naming registry entries; defaults are the single
source of truth and grids state only deltas.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Optional

from .registry import registries
from .validation import ConfigError, check_fields, did_you_mean

__all__ = ["ModelConfig"]


@dataclass
class ModelConfig:
    arch: str = "decoder"            # encoder | decoder | encoder_decoder | rnn | lstm | gru
    vocab_size: int = 256
    d_model: int = 128
    n_heads: int = 4
    n_kv_heads: Optional[int] = None  # < n_heads: grouped-query attention; 1: multi-query
    d_head: Optional[int] = None     # head size; default d_model / n_heads
    n_layers: int = 2                # per stack (encoder_decoder has two stacks)
    d_ff: Optional[int] = None       # default 4 * d_model (gated FFNs use 2/3 of it)
    pos: str = "sinusoidal"
    attn_scale: str = "sqrt"
    norm: str = "layernorm"
    norm_placement: str = "pre"
    ffn: str = "gelu"
    dropout: float = 0.0
    max_len: int = 512               # learned PE table size; longer input is an error
    causal: Optional[bool] = None    # default: True for decoders, False for encoders
    prefix_len: int = 0              # causal stacks: the first N positions see each other
    cross_attention: bool = True     # encoder_decoder only: False removes it (ablation)
    tie_embeddings: bool = False
    embed_init_std: float = 0.02     # token embedding init; tiny recall tasks want ~1.0
    bias: bool = True                # biases in linear layers and norms (torch default)
    t5_max_distance: int = 128       # t5: last bucket from here on; 0: the training length
    readout: str = "token"           # what the head reads: token (each position) or mean

    def __post_init__(self) -> None:
        check_fields(self, strings=False)      # the API takes 128, never "128"
        for name, reg in registries.items():
            if getattr(self, name) not in reg:
                raise ConfigError(name, reg.unknown_message(getattr(self, name)))
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        if self.causal is None:
            self.causal = registries["arch"].info(self.arch)["default_causal"]
        self._validate()

    def _validate(self) -> None:
        for name in ("vocab_size", "d_model", "n_heads", "n_layers", "d_ff", "max_len"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        if self.vocab_size < 2:
            raise ConfigError("vocab_size", f"must be >= 2, got {self.vocab_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.prefix_len < 0:
            raise ConfigError("prefix_len", f"must be >= 0 (0: fully causal), got "
                              f"{self.prefix_len}")
        if self.embed_init_std <= 0:
            raise ConfigError("embed_init_std", f"must be > 0, got {self.embed_init_std}")
        # T5 spaces its buckets logarithmically from 16 (the exact ones) to max_distance
        if self.pos == "t5" and not (self.t5_max_distance == 0 or self.t5_max_distance > 16):
            raise ConfigError("t5_max_distance", "must be 0 (the training length) or > 16 "
                              f"(T5's exact buckets), got {self.t5_max_distance}")
        ignored = self.ignored_fields()
        if self.d_head is not None and self.d_head < 1:
            raise ConfigError("d_head", f"must be >= 1, got {self.d_head}")
        if "n_heads" not in ignored:
            if self.d_head is None and self.d_model % self.n_heads:
                raise ConfigError("d_model", f"{self.d_model} is not divisible by "
                                  f"n_heads={self.n_heads} (or set d_head)")
            kv = self.n_kv_heads
            if kv is not None and (kv < 1 or self.n_heads % kv):
                raise ConfigError("n_kv_heads", f"must divide n_heads={self.n_heads}, got {kv}")
        for name, reg in registries.items():         # each chosen class's own rules
            choice = getattr(self, name)
            if name not in ignored and reg.info(choice)["check_config"]:
                reg.get(choice).check_config(self)       # imports the variant's module

    # Optional fields added after results were committed: left out of `to_dict` while
    # unset (or at the value every earlier run had), so that adding them changed no run id.
    UNSET_OMITTED = ("d_head",)
    OMITTED_AT = {"t5_max_distance": 128, "prefix_len": 0, "readout": "token"}

    @property
    def t5_distance(self) -> int:
        """T5's max_distance; 0 means the training length, which a run's config resolves
        (ablations/config.py) and the bare core, knowing no task, takes as max_len."""
        return self.t5_max_distance or self.max_len

    @property
    def head_dim(self) -> int:
        """d_head when set (heads of any size: n_heads * d_head need not be d_model),
        else d_model / n_heads."""
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    def ignored_fields(self) -> set[str]:
        """Fields that have no effect under this config's other choices.

        Each registered class may list the fields it makes irrelevant in `ignores`
        (an LSTM ignores `pos`; norm_placement=none ignores `norm`). The grid runner
        drops them so that such cells are trained once, not once per ignored value.
        """
        ignored: set[str] = set()
        for name, reg in registries.items():
            if name not in ignored:
                ignored |= set(reg.info(getattr(self, name))["ignores"])
        if self.pos != "t5" or "pos" in ignored:      # only T5's bias has buckets
            ignored.add("t5_max_distance")
        if not self.causal or "causal" in ignored:    # a prefix opens up a causal mask only
            ignored.add("prefix_len")
        return ignored

    def to_dict(self, drop_ignored: bool = False) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for name in self.UNSET_OMITTED:
            if d[name] is None:
                del d[name]
        for name, old in self.OMITTED_AT.items():
            if d[name] == old:
                del d[name]
        if drop_ignored:
            for name in self.ignored_fields():
                d.pop(name, None)
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        unknown = set(d) - set(cls.field_names())
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(name, f"unknown field{did_you_mean(name, cls.field_names())}; "
                              f"valid: {', '.join(cls.field_names())}")
        return cls(**d)
