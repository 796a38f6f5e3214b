"""The Transformer: encoder (bidirectional), decoder (causal LM) and encoder-decoder.

Every architectural choice comes ready-made from a registry (positional encoding,
attention scale, norm, norm placement, FFN); this file only wires them together.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .attention import Attention, KVCache, attention_mask
from .ffn import FFN
from .generate import Generation
from .loss import linear_cross_entropy
from .norm import PLACEMENT, final_norm
from .registry import ARCH, POSITIONAL


class Block(nn.Module):
    """Self-attention, optional cross-attention, FFN; each wrapped in residual + norm."""

    def __init__(self, cfg, cross: bool = False):
        super().__init__()
        Placement = PLACEMENT.get(cfg.norm_placement)
        self.self_attn, self.attn_sub = Attention(cfg), Placement(cfg)
        self.cross_attn = Attention(cfg, cross=True) if cross else None
        self.cross_sub = Placement(cfg) if cross else None
        self.ffn, self.ffn_sub = FFN.get(cfg.ffn)(cfg), Placement(cfg)

    def forward(self, x, pos, start=0, mask=None, is_causal=False, memory=None, cache=None):
        self_cache, cross_cache = cache if cache is not None else (None, None)
        x = self.attn_sub(x, lambda h: self.self_attn(h, pos, start, mask, is_causal,
                                                      cache=self_cache))
        if self.cross_attn is not None:
            x = self.cross_sub(x, lambda h: self.cross_attn(h, memory=memory, cache=cross_cache))
        return self.ffn_sub(x, self.ffn)


class Stack(nn.Module):
    """Positional encoding (one instance, shared by all layers), blocks, final norm."""

    def __init__(self, cfg, causal: bool, cross: bool = False):
        super().__init__()
        self.causal = causal
        self.pos = POSITIONAL.get(cfg.pos)(dataclasses.replace(cfg, causal=causal))
        self.blocks = nn.ModuleList(Block(cfg, cross) for _ in range(cfg.n_layers))
        self.norm = final_norm(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, start=0, memory=None, caches=None):   # (B, T, D) -> (B, T, D)
        mask, is_causal = attention_mask(self.pos, self.causal, x.shape[1], start, x.device)
        x = self.drop(self.pos.embed(x, start))
        for i, block in enumerate(self.blocks):
            x = block(x, self.pos, start, mask, is_causal, memory,
                      caches[i] if caches is not None else None)
        return self.norm(x)


class LanguageModel(Generation, nn.Module):
    """Token embedding + stack + output head; the shared base of every arch here."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=cfg.embed_init_std)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight

    def loss(self, *inputs, target, ignore_index: int = -100):
        """Mean cross-entropy of self(*inputs) against target (B, T), positions equal to
        ignore_index unscored; the (B, T, V) logits are never built (see loss.py)."""
        return linear_cross_entropy(self.hidden(*inputs), self.head.weight, target, ignore_index)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _kv_caches(self, stack, batch, max_len, cross=False):
        cfg, ref = self.cfg, self.embed.weight
        make = lambda n: KVCache(batch, cfg.n_kv_heads or cfg.n_heads, n, cfg.head_dim,
                                 ref.device, ref.dtype)
        return [(make(max_len), make(0) if cross else None) for _ in stack.blocks]


class TransformerLM(LanguageModel):
    """Encoder or decoder: tokens (B, T) -> logits (B, T, V)."""

    ignores = ("cross_attention",)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.stack = Stack(cfg, causal=cfg.causal)

    def forward(self, tokens, start: int = 0, caches=None):
        return self.head(self.hidden(tokens, start, caches))

    def hidden(self, tokens, start: int = 0, caches=None):      # (B, T) -> (B, T, D)
        return self.stack(self.embed(tokens), start, caches=caches)

    # incremental decoding (see generate.py)
    def init_state(self, prompt, max_len, src=None):
        if not self.cfg.causal:
            raise ValueError("incremental decoding needs a causal model; this one is "
                             "bidirectional (use_cache=False recomputes every step)")
        return {"caches": self._kv_caches(self.stack, prompt.shape[0], max_len), "start": 0}

    def decode(self, tokens, state):
        logits = self(tokens, state["start"], state["caches"])
        state["start"] += tokens.shape[1]
        return logits

    def full_logits(self, tokens, src=None):
        return self(tokens)


@ARCH.register("decoder")
class Decoder(TransformerLM):
    default_causal = True


@ARCH.register("encoder")
class Encoder(TransformerLM):
    default_causal = False


@ARCH.register("encoder_decoder")
class EncoderDecoder(LanguageModel):
    """model(src, tgt) -> logits (B, T, V). Cross-attention: queries from the decoder,
    keys/values from the encoder's final output. `causal` applies to the decoder."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = Stack(cfg, causal=False)
        self.decoder = Stack(cfg, causal=cfg.causal, cross=cfg.cross_attention)

    def encode(self, src):                                    # (B, S) -> (B, S, D)
        return self.encoder(self.embed(src))

    def forward(self, src, tgt, start: int = 0, caches=None, memory=None):
        return self.head(self.hidden(src, tgt, start, caches, memory))

    def hidden(self, src, tgt, start: int = 0, caches=None, memory=None):  # -> (B, T, D)
        memory = self.encode(src) if memory is None else memory
        return self.decoder(self.embed(tgt), start, memory, caches)

    def init_state(self, prompt, max_len, src=None):
        if src is None:
            raise ValueError("encoder_decoder.generate needs src=")
        caches = self._kv_caches(self.decoder, prompt.shape[0], max_len, cross=True)
        return {"caches": caches, "start": 0, "memory": self.encode(src), "src": src}

    def decode(self, tokens, state):
        logits = self(state["src"], tokens, state["start"], state["caches"], state["memory"])
        state["start"] += tokens.shape[1]
        return logits

    def full_logits(self, tokens, src=None):
        if src is None:
            raise ValueError("encoder_decoder.generate needs src=")
        return self(src, tokens)


def build_model(cfg) -> nn.Module:
    """ModelConfig (or a dict of its fields) -> the registered architecture."""
    from .config import ModelConfig
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return ARCH.get(cfg.arch)(cfg)
