"""Multi-head attention for self and cross attention, with a KV cache.

This file turns the residual stream into heads (q, k, v), applies the positional
rotation and the attention-scale variant, and hands the heads to `attend.attend`,
which alone decides how softmax attention is computed (SDPA, the block-causal CPU
kernel, or the explicit path that records weights). Masks and positional biases are
built once per forward pass by `attention_mask` and shared by every layer.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .attend import attend, causal_allowed
from .registry import ATTN_SCALE

if TYPE_CHECKING:
    from .config import ModelConfig
    from .positional import PositionalEncoding


# -- attention scale: forward(q) -> (q, scale passed to the kernel) ---------------------
class AttentionScale(nn.Module):
    """Base of the `attn_scale` variants: how attention logits are scaled.

    Protocol: built as Cls(cfg); `forward(q) -> (q, scale)` with q (B, H, T, hd).
    Attention computes softmax((q' k^T) * scale) with the returned q' and scale, so a
    variant may either return a float factor (folded into the kernel, free) or
    rescale q itself and return 1.0 (per-head or learned temperatures); `effective()`
    returns the factor the logits get (diagnostics read it). Subclasses with a fixed
    factor only define `factor(d_k)`. Optional class attributes:
    `ignores` and `check_config(cfg)` (see registry.py).
    """

    def __init__(self, cfg):
        super().__init__()
        self.value = self.factor(cfg.head_dim)

    @staticmethod
    def factor(d_k: int) -> float:
        raise NotImplementedError

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, float]:
        return q, self.value

    def effective(self) -> torch.Tensor:
        """The factor each head's logits get, (H,) or a scalar tensor: what a learned
        temperature converged to, in the same units as the fixed ones."""
        return torch.tensor(self.value)


@ATTN_SCALE.register("sqrt")
class SqrtScale(AttentionScale):
    """1/sqrt(d_k): keeps q.k at unit variance for unit-variance q, k (Vaswani 3.2.1)."""
    factor = staticmethod(lambda d_k: 1.0 / math.sqrt(d_k))


@ATTN_SCALE.register("none")
class NoScale(AttentionScale):
    """No scaling: logits grow like sqrt(d_k) and the softmax saturates."""
    factor = staticmethod(lambda d_k: 1.0)


@ATTN_SCALE.register("dk")
class DkScale(AttentionScale):
    """1/d_k (muP-style): logits shrink as d_k grows."""
    factor = staticmethod(lambda d_k: 1.0 / d_k)


@ATTN_SCALE.register("learned")
class LearnedScale(nn.Module):
    """A learned temperature per head, initialised at 1/sqrt(d_k)."""

    def __init__(self, cfg):
        super().__init__()
        self.log_scale = nn.Parameter(torch.full((cfg.n_heads,), self.initial_log(cfg.head_dim)))

    @staticmethod
    def initial_log(d_k: int) -> float:
        return -0.5 * math.log(d_k)

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, float]:   # q: (B, H, T, hd)
        return q * self.log_scale.exp().view(1, -1, 1, 1).to(q.dtype), 1.0

    def effective(self) -> torch.Tensor:
        return self.log_scale.detach().exp()


@ATTN_SCALE.register("learned_unit")
class LearnedUnitScale(LearnedScale):
    """A learned temperature per head started at 1, the unscaled logits: where the data
    alone takes the scale, with no hint of 1/sqrt(d_k) in its start."""

    @staticmethod
    def initial_log(d_k: int) -> float:
        return 0.0


# -- masks -----------------------------------------------------------------------------
def attention_mask(pos: PositionalEncoding, causal: bool, Tq: int, start: int,
                   device, prefix: int = 0) -> tuple[torch.Tensor | None, bool]:
    """Mask for Tq queries at positions start.. against keys 0..start+Tq-1; `prefix`
    (causal only): the first `prefix` positions see each other (a prefix LM).

    Returns (mask, is_causal): mask is None, a bool (Tq, Tk) "may attend" tensor or an
    additive float (1, H, Tq, Tk) bias; is_causal=True lets SDPA use its causal kernel.
    """
    Tk = start + Tq
    bias = pos.bias(Tq, Tk, start, 0)
    # one new query at the end sees every cached key; so does every query when all the
    # keys lie inside the prefix
    masked = causal and Tq > 1 and Tk > prefix
    if bias is None:
        if not masked:
            return None, False
        if start == 0 and prefix <= 1:
            return None, True
        return causal_allowed(Tq, start, device, prefix), False
    if masked:
        bias = bias.masked_fill(~causal_allowed(Tq, start, device, prefix), float("-inf"))
    return bias.unsqueeze(0), False


# -- KV cache ----------------------------------------------------------------------------
class KVCache:
    """Preallocated keys/values for one attention layer: appends write in place."""

    def __init__(self, batch: int, n_kv_heads: int, max_len: int, head_dim: int, device, dtype):
        shape = (batch, n_kv_heads, max_len, head_dim)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"KV cache holds {self.k.shape[2]} positions; need {end}")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class Attention(nn.Module):
    """Multi-head (or grouped-query, n_kv_heads < n_heads) attention: self-attention
    with one fused q/k/v projection, or cross-attention (queries from x, keys and
    values from `memory`)."""

    def __init__(self, cfg: ModelConfig, cross: bool = False):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.n_kv_heads = cfg.n_kv_heads or cfg.n_heads
        self.head_dim = cfg.head_dim
        self.cross = cross
        q_dim, kv_dim = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        if cross:        # queries from the decoder, keys/values from the encoder output
            self.q_proj = nn.Linear(cfg.d_model, q_dim, bias=cfg.bias)
            self.kv_proj = nn.Linear(cfg.d_model, 2 * kv_dim, bias=cfg.bias)
        else:            # one fused projection: a single matmul for q, k and v
            self.qkv_proj = nn.Linear(cfg.d_model, q_dim + 2 * kv_dim, bias=cfg.bias)
        self.out_proj = nn.Linear(q_dim, cfg.d_model, bias=cfg.bias)
        self.scale = ATTN_SCALE.get(cfg.attn_scale)(cfg)
        self.dropout = cfg.dropout
        self.recorded: list | None = None       # set by inspect.record_attention

    def qk_grads(self) -> list[torch.Tensor]:
        """The gradients of the query and key projections (weight and bias rows), which
        reach the loss only through the softmax's Jacobian: what saturated attention
        would starve (Vaswani 3.2.1). Empty before backward."""
        if self.cross:
            params, rows = [self.q_proj, self.kv_proj], [None, self.n_kv_heads * self.head_dim]
        else:
            params, rows = [self.qkv_proj], [(self.n_heads + self.n_kv_heads) * self.head_dim]
        out = []
        for lin, n in zip(params, rows):
            for p in (lin.weight, lin.bias):
                if p is not None and p.grad is not None:
                    out.append(p.grad if n is None else p.grad[:n])
        return out

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:   # (B, T, n*hd) -> (B, n, T, hd)
        B, T, _ = x.shape
        return x.view(B, T, n, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, pos: PositionalEncoding | None = None, start: int = 0,
                mask: torch.Tensor | None = None, is_causal: bool = False,
                memory: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, D) -> (B, T, D). Self-attention rotates q/k with `pos` at absolute
        positions start..; cross-attention reads `memory` (B, S, D), or its cached
        projection. `mask`, `is_causal`: as attention_mask returns them."""
        B, T, _ = x.shape
        if self.cross:
            q = self._heads(self.q_proj(x), self.n_heads)
            if cache is not None and cache.length:
                k, v = cache.k, cache.v
            else:
                k, v = self.kv_proj(memory).chunk(2, dim=-1)
                k, v = self._heads(k, self.n_kv_heads), self._heads(v, self.n_kv_heads)
                if cache is not None:
                    cache.k, cache.v, cache.length = k, v, k.shape[2]
        else:
            q, k, v = self.qkv_proj(x).split(
                [self.n_heads * self.head_dim] + [self.n_kv_heads * self.head_dim] * 2, dim=-1)
            q, k, v = (self._heads(q, self.n_heads), self._heads(k, self.n_kv_heads),
                       self._heads(v, self.n_kv_heads))
            q, k = pos.rotate(q, k, start, start)
            if cache is not None:
                k, v = cache.append(k, v)
        q, scale = self.scale(q)
        y = attend(q, k, v, scale=scale, mask=mask, is_causal=is_causal,
                   dropout=self.dropout if self.training else 0.0, record=self.recorded)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, -1))
