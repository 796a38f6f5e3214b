"""Multi-head attention for self and cross attention, with a KV cache.

The fast path is `F.scaled_dot_product_attention`, except for causal self-attention
while training on a CPU, where `BlockCausalAttention` skips the masked half of the work
that SDPA's CPU kernel computes at short lengths. When attention weights are being
recorded (see inspect.record_attention) the same computation runs explicitly so the
weights can be kept. Masks and positional biases are built once per forward pass by
`attention_mask` and shared by every layer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ATTN_SCALE


# -- attention scale: forward(q) -> (q, scale passed to SDPA) -------------------------
class AttentionScale(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.value = self.factor(cfg.head_dim)

    @staticmethod
    def factor(d_k: int) -> float:
        raise NotImplementedError

    def forward(self, q):
        return q, self.value


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
        self.log_scale = nn.Parameter(torch.full((cfg.n_heads,), -0.5 * math.log(cfg.head_dim)))

    def forward(self, q):                                       # q: (B, H, T, hd)
        return q * self.log_scale.exp().view(1, -1, 1, 1).to(q.dtype), 1.0


# -- masks -----------------------------------------------------------------------------
def attention_mask(pos, causal: bool, Tq: int, start: int, device):
    """Mask for Tq queries at positions start.. against keys 0..start+Tq-1.

    Returns (mask, is_causal): mask is None, a bool (Tq, Tk) "may attend" tensor or an
    additive float (1, H, Tq, Tk) bias; is_causal=True lets SDPA use its causal kernel.
    """
    Tk = start + Tq
    bias = pos.bias(Tq, Tk, start, 0)
    masked = causal and Tq > 1           # one new query at the end sees every cached key
    if bias is None:
        if not masked:
            return None, False
        if start == 0:
            return None, True
        return _allowed(Tq, start, device), False
    if masked:
        bias = bias.masked_fill(~_allowed(Tq, start, device), float("-inf"))
    return bias.unsqueeze(0), False


def _allowed(Tq: int, start: int, device):
    qpos = torch.arange(start, start + Tq, device=device)
    kpos = torch.arange(start + Tq, device=device)
    return kpos[None, :] <= qpos[:, None]                                  # (Tq, Tk)


# -- causal self-attention in query blocks (training on a CPU) ---------------------------
class BlockCausalAttention(torch.autograd.Function):
    """Exact causal softmax attention, computed in blocks of query rows: block [s, e)
    meets only keys [0, e), so products above the diagonal block are never formed.

    On a CPU, SDPA's flash kernel splits keys into blocks of 512: below that length it
    multiplies every query with every key, masks half of the products away, and does
    it in small per-head matmuls. Here each block is one batched matmul over all heads.
    The softmax probabilities are kept for backward (`use_block_causal` bounds them).
    """

    @staticmethod
    def forward(ctx, q, k, v, scale: float, block: int):            # (B, H, T, hd) each
        shape = q.shape
        q, k, v = (t.reshape(-1, *shape[2:]) for t in (q, k, v))    # (n, T, hd), n = B*H
        T = shape[2]
        outs, probs = [], []
        for s in range(0, T, block):
            e = min(s + block, T)
            scores = torch.bmm(q[:, s:e], k[:, :e].transpose(1, 2)).mul_(scale)  # (n, e-s, e)
            future = torch.ones(e - s, e - s, dtype=torch.bool, device=q.device).triu_(1)
            scores[:, :, s:].masked_fill_(future, float("-inf"))
            p = torch.softmax(scores, dim=-1, out=scores)
            outs.append(torch.bmm(p, v[:, :e]))                      # (n, e-s, hd)
            probs.append(p)
        # every product lands in a fresh contiguous tensor: bmm into a strided slice of
        # a bigger one (out=, baddbmm_) falls back to one small matmul per batch entry
        out = torch.cat(outs, dim=1)
        ctx.save_for_backward(q, k, v, out, *probs)
        ctx.scale, ctx.block, ctx.shape = scale, block, shape
        return out.view(shape)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, *probs = ctx.saved_tensors
        T = q.shape[1]
        grad_out = grad_out.reshape(q.shape)
        dqs, dk, dv = [], torch.zeros_like(k), torch.zeros_like(v)
        # softmax backward: dS = P * (dP - rowsum(dP * P)), and rowsum(dP * P) = rowsum(dO * O)
        delta = (grad_out * out).sum(-1, keepdim=True)                          # (n, T, 1)
        for p, s in zip(probs, range(0, T, ctx.block)):
            e = min(s + ctx.block, T)
            go = grad_out[:, s:e]
            dv[:, :e] += torch.bmm(p.transpose(1, 2), go)
            ds = torch.bmm(go, v[:, :e].transpose(1, 2)).sub_(delta[:, s:e]).mul_(p)
            ds.mul_(ctx.scale)
            dqs.append(torch.bmm(ds, k[:, :e]))
            dk[:, :e] += torch.bmm(ds.transpose(1, 2), q[:, s:e])
        dq = torch.cat(dqs, dim=1)
        return dq.view(ctx.shape), dk.view(ctx.shape), dv.view(ctx.shape), None, None


# Kept probabilities are at most about half of n * T^2 floats: 2^23 is 16 MiB a layer.
BLOCK_CAUSAL_MAX_SCORES = 2 ** 23


def use_block_causal(q, k, dropout: float) -> int:
    """Query block size for BlockCausalAttention, or 0 for SDPA: on CPU in training
    (grad on), fp32/fp64, no dropout, no GQA, and only while the kept probabilities
    stay small. Blocks of 64 measured 0.55-0.8x the flash kernel's time for sequences
    of 64 to 512 and head dims of 16 to 64 (2 cores)."""
    B, H, T, _ = q.shape
    if (q.device.type != "cpu" or not torch.is_grad_enabled() or dropout > 0
            or q.dtype not in (torch.float32, torch.float64) or k.shape[1] != H
            or torch.is_autocast_enabled("cpu") or T < 2 or B * H * T * T > BLOCK_CAUSAL_MAX_SCORES
            or not (q.requires_grad or k.requires_grad)):
        return 0
    return min(T, 64)


# -- KV cache ----------------------------------------------------------------------------
class KVCache:
    """Preallocated keys/values for one attention layer: appends write in place."""

    def __init__(self, batch: int, n_kv_heads: int, max_len: int, head_dim: int, device, dtype):
        shape = (batch, n_kv_heads, max_len, head_dim)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.length = 0

    def append(self, k, v):
        end = self.length + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"KV cache holds {self.k.shape[2]} positions; need {end}")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class Attention(nn.Module):
    def __init__(self, cfg, cross: bool = False):
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

    def _heads(self, x, n):                      # (B, T, n*hd) -> (B, n, T, hd)
        B, T, _ = x.shape
        return x.view(B, T, n, self.head_dim).transpose(1, 2)

    def forward(self, x, pos=None, start=0, mask=None, is_causal=False, memory=None, cache=None):
        """x: (B, T, D). Self-attention rotates q/k with `pos` at absolute positions
        start..; cross-attention reads `memory` (B, S, D), or its cached projection."""
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
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
        dropout = self.dropout if self.training else 0.0
        if self.recorded is not None:
            y = self._explicit(q, k, v, scale, mask, is_causal)
        elif is_causal and (block := use_block_causal(q, k, dropout)):
            y = BlockCausalAttention.apply(q, k, v, scale, block)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale, dropout_p=dropout,
                enable_gqa=self.n_kv_heads != self.n_heads)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, -1))

    def _explicit(self, q, k, v, scale, mask, is_causal):
        """The same attention as SDPA, keeping the weights (B, H, Tq, Tk)."""
        if self.n_kv_heads != self.n_heads:
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-2, -1)) * scale
        if is_causal:
            mask = _allowed(q.shape[2], 0, q.device)
        if mask is not None:
            scores = (scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool
                      else scores + mask)
        weights = scores.softmax(dim=-1)
        self.recorded.append(weights.detach())
        if hasattr(self.recorded, "n_keys"):
            self.recorded.n_keys.append(torch.isfinite(scores).sum(-1))
        weights = F.dropout(weights, self.dropout, self.training)
        return weights @ v
