"""The Transformer: encoder (bidirectional), decoder (causal LM) and encoder-decoder.

Every architectural choice comes ready-made from a registry (positional encoding,
attention scale, norm, norm placement, FFN); this file only wires them together.
`SequenceModel` is the contract every arch (recurrent ones included) fulfils.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .attention import Attention, KVCache, attention_mask
from .ffn import FFN
from .generate import Generation
from .loss import linear_cross_entropy
from .norm import PLACEMENT, final_norm
from .registry import ARCH, POSITIONAL, READOUT

if TYPE_CHECKING:
    from .config import ModelConfig
    from .positional import PositionalEncoding

# per block: (self-attention cache, cross-attention cache or None)
Caches = list[tuple[KVCache, "KVCache | None"]]


class Block(nn.Module):
    """Self-attention, optional cross-attention, FFN; each wrapped in residual + norm."""

    def __init__(self, cfg: ModelConfig, cross: bool = False):
        super().__init__()
        Placement = PLACEMENT.get(cfg.norm_placement)
        self.self_attn, self.attn_sub = Attention(cfg), Placement(cfg)
        self.cross_attn = Attention(cfg, cross=True) if cross else None
        self.cross_sub = Placement(cfg) if cross else None
        self.ffn, self.ffn_sub = FFN.get(cfg.ffn)(cfg), Placement(cfg)

    def forward(self, x: torch.Tensor, pos: PositionalEncoding, start: int = 0,
                mask: torch.Tensor | None = None, is_causal: bool = False,
                memory: torch.Tensor | None = None,
                cache: tuple[KVCache, KVCache | None] | None = None) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D); `memory` (B, S, D) feeds cross-attention."""
        self_cache, cross_cache = cache if cache is not None else (None, None)
        x = self.attn_sub(x, lambda h: self.self_attn(h, pos, start, mask, is_causal,
                                                      cache=self_cache))
        if self.cross_attn is not None:
            x = self.cross_sub(x, lambda h: self.cross_attn(h, memory=memory, cache=cross_cache))
        return self.ffn_sub(x, self.ffn)


class Stack(nn.Module):
    """Positional encoding (one instance, shared by all layers), blocks, final norm."""

    def __init__(self, cfg: ModelConfig, causal: bool, cross: bool = False):
        super().__init__()
        self.causal = causal
        self.prefix = cfg.prefix_len if causal else 0      # a prefix LM's visible prefix
        self.pos = POSITIONAL.get(cfg.pos)(dataclasses.replace(cfg, causal=causal))
        self.blocks = nn.ModuleList(Block(cfg, cross) for _ in range(cfg.n_layers))
        self.norm = final_norm(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, start: int = 0, memory: torch.Tensor | None = None,
                caches: Caches | None = None) -> torch.Tensor:       # (B, T, D) -> (B, T, D)
        if caches is not None and start < self.prefix and (start or x.shape[1] < self.prefix):
            # a cached key never sees later keys: the prefix must come in one piece
            raise ValueError(f"incremental decoding of a prefix LM needs its whole prefix "
                             f"({self.prefix} tokens) in the first step; got positions "
                             f"{start}..{start + x.shape[1] - 1} (use_cache=False recomputes)")
        mask, is_causal = attention_mask(self.pos, self.causal, x.shape[1], start, x.device,
                                         self.prefix)
        x = self.drop(self.pos.embed(x, start))
        for i, block in enumerate(self.blocks):
            x = block(x, self.pos, start, mask, is_causal, memory,
                      caches[i] if caches is not None else None)
        return self.norm(x)


class SequenceModel(Generation, nn.Module):
    """Token embedding + output head: the base and the contract of every arch.

    An arch is registered with @ARCH.register(name), built as Cls(cfg), and provides:
      forward(*inputs) -> logits (B, T, V)   inputs as `inputs(batch)` returns them
      hidden(*inputs) -> (B, T, D)           the final states before the head; `loss`
                                             fuses the head into the cross-entropy
      blocks() -> [nn.Module]                its layers in depth order (per-layer
                                             gradient norms, one entry per layer)
      init_state / decode / full_logits      incremental decoding (see generate.py)
    and sets `input_keys` when its forward takes more than the batch's "input" tokens.
    What it is, declared for tasks and tools that must not sniff names (registry.py):
    `default_causal` (the `causal` a config gets when it leaves it unset), `seq2seq`
    (reads a source: forward(src, input)) and `recurrent` (a state, no attention).
    """

    input_keys: tuple[str, ...] = ("input",)   # batch keys, in forward's argument order
    default_causal = True
    seq2seq = False
    recurrent = False

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=cfg.embed_init_std)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        self.readout = READOUT.get(cfg.readout)(cfg)     # what the head reads (readout.py)

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """A task's batch dict -> the positional arguments of forward, hidden and loss."""
        return tuple(batch[k] for k in self.input_keys)

    def hidden(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:
        raise NotImplementedError

    def loss(self, *inputs: torch.Tensor, target: torch.Tensor,
             ignore_index: int = -100) -> torch.Tensor:
        """Mean cross-entropy of self(*inputs) against target (B, T), positions equal to
        ignore_index unscored; the (B, T, V) logits are never built (see loss.py)."""
        return linear_cross_entropy(self.hidden(*inputs), self.head.weight, target, ignore_index)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _kv_caches(self, stack: Stack, batch: int, max_len: int, cross: bool = False) -> Caches:
        cfg, ref = self.cfg, self.embed.weight
        make = lambda n: KVCache(batch, cfg.n_kv_heads or cfg.n_heads, n, cfg.head_dim,
                                 ref.device, ref.dtype)
        return [(make(max_len), make(0) if cross else None) for _ in stack.blocks]


class TransformerLM(SequenceModel):
    """Encoder or decoder: tokens (B, T) -> logits (B, T, V)."""

    ignores = ("cross_attention",)

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.stack = Stack(cfg, causal=cfg.causal)

    def forward(self, tokens: torch.Tensor, start: int = 0,
                caches: Caches | None = None) -> torch.Tensor:
        return self.head(self.hidden(tokens, start, caches))

    def hidden(self, tokens: torch.Tensor, start: int = 0,
               caches: Caches | None = None) -> torch.Tensor:     # (B, T) -> (B, T, D)
        return self.readout(self.stack(self.embed(tokens), start, caches=caches))

    def blocks(self) -> list[nn.Module]:
        return list(self.stack.blocks)

    # incremental decoding (see generate.py)
    def init_state(self, prompt: torch.Tensor, max_len: int,
                   src: torch.Tensor | None = None) -> dict[str, Any]:
        if not self.cfg.causal:
            raise ValueError("incremental decoding needs a causal model; this one is "
                             "bidirectional (use_cache=False recomputes every step)")
        return {"caches": self._kv_caches(self.stack, prompt.shape[0], max_len), "start": 0}

    def decode(self, tokens: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        logits = self(tokens, state["start"], state["caches"])
        state["start"] += tokens.shape[1]
        return logits

    def full_logits(self, tokens: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        return self(tokens)


@ARCH.register("decoder")
class Decoder(TransformerLM):
    """A causal stack over one stream: the GPT-style language model."""
    default_causal = True


@ARCH.register("encoder")
class Encoder(TransformerLM):
    """A bidirectional stack over one stream (BERT-style); causal=True masks it."""
    default_causal = False


@ARCH.register("encoder_decoder")
class EncoderDecoder(SequenceModel):
    """model(src, tgt) -> logits (B, T, V). Cross-attention: queries from the decoder,
    keys/values from the encoder's final output. `causal` applies to the decoder."""

    input_keys = ("src", "input")
    seq2seq = True

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.encoder = Stack(cfg, causal=False)
        self.decoder = Stack(cfg, causal=cfg.causal, cross=cfg.cross_attention)

    def encode(self, src: torch.Tensor) -> torch.Tensor:      # (B, S) -> (B, S, D)
        return self.encoder(self.embed(src))

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, start: int = 0,
                caches: Caches | None = None, memory: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.hidden(src, tgt, start, caches, memory))

    def hidden(self, src: torch.Tensor, tgt: torch.Tensor, start: int = 0,
               caches: Caches | None = None,
               memory: torch.Tensor | None = None) -> torch.Tensor:   # -> (B, T, D)
        memory = self.encode(src) if memory is None else memory
        return self.readout(self.decoder(self.embed(tgt), start, memory, caches))

    def blocks(self) -> list[nn.Module]:
        return [*self.encoder.blocks, *self.decoder.blocks]

    def init_state(self, prompt: torch.Tensor, max_len: int,
                   src: torch.Tensor | None = None) -> dict[str, Any]:
        if src is None:
            raise ValueError("encoder_decoder.generate needs src=")
        caches = self._kv_caches(self.decoder, prompt.shape[0], max_len, cross=True)
        return {"caches": caches, "start": 0, "memory": self.encode(src), "src": src}

    def decode(self, tokens: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        logits = self(state["src"], tokens, state["start"], state["caches"], state["memory"])
        state["start"] += tokens.shape[1]
        return logits

    def full_logits(self, tokens: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        if src is None:
            raise ValueError("encoder_decoder.generate needs src=")
        return self(src, tokens)


def build_model(cfg: ModelConfig | dict) -> SequenceModel:
    """ModelConfig (or a dict of its fields) -> the registered architecture."""
    from .config import ModelConfig
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return ARCH.get(cfg.arch)(cfg)


def build_skeleton(cfg: ModelConfig | dict) -> SequenceModel:
    """The model on the meta device: every parameter's shape, no memory and no init
    cost (for counting parameters or comparing shapes before anything runs)."""
    try:
        with torch.device("meta"):
            return build_model(cfg)
    except (RuntimeError, NotImplementedError):   # a module that computes at init
        return build_model(cfg)
