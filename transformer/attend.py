"""The attention kernel: softmax(q k^T * scale + mask) v, and the one place that picks
how it is computed.

`attend` chooses, per call, between three computations of the same function:
  explicit     when weights are being recorded (inspect.record_attention): the only
               path that can hand the (B, H, Tq, Tk) weights back
  block-causal causal self-attention while training on a CPU (`use_block_causal`):
               skips the masked half of the work that SDPA's CPU kernel computes at
               short lengths
  SDPA         `F.scaled_dot_product_attention`, everywhere else
The block-causal kernel can be switched off for a whole process or a block of code
with `set_backend("sdpa")` / `with force_sdpa():` -- to compare against it, or to rule
it out. This is deliberately not a ModelConfig field: it changes no result beyond
float rounding, so it must not change a run's id.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "sdpa")
_backend = "auto"


def set_backend(name: str) -> None:
    """'auto' (default): block-causal where it pays, SDPA elsewhere. 'sdpa': SDPA for
    every unrecorded call. Recording always runs the explicit path: SDPA cannot return
    the weights."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; valid: {', '.join(BACKENDS)}")
    _backend = name


def get_backend() -> str:
    return _backend


@contextlib.contextmanager
def force_sdpa() -> Iterator[None]:
    """Within the block, attention never takes the block-causal path."""
    previous = _backend
    set_backend("sdpa")
    try:
        yield
    finally:
        set_backend(previous)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float,
           mask: torch.Tensor | None = None, is_causal: bool = False, dropout: float = 0.0,
           record: list | None = None) -> torch.Tensor:
    """q (B, H, Tq, hd), k and v (B, H_kv, Tk, hd) -> (B, H, Tq, hd).

    H_kv < H is grouped-query attention (each group of H / H_kv query heads shares a
    key/value head). `mask` is None, a bool "may attend" (Tq, Tk) tensor or an additive
    float bias broadcastable to (B, H, Tq, Tk); `is_causal` instead applies the causal
    mask of a sequence starting at position 0 (see attention.attention_mask). `dropout`
    is the probability applied to the weights (0 outside training). A list passed as
    `record` receives the weights (see inspect.record_attention).
    """
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    if record is not None:
        return explicit_attention(q, k, v, scale, mask, is_causal, dropout, record)
    if is_causal and _backend == "auto" and (block := use_block_causal(q, k, dropout)):
        return BlockCausalAttention.apply(q, k, v, scale, block)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                          scale=scale, dropout_p=dropout,
                                          enable_gqa=k.shape[1] != q.shape[1])


def causal_allowed(Tq: int, start: int, device, prefix: int = 0) -> torch.Tensor:
    """(Tq, Tk = start + Tq) bool: query i (at position start + i) may see key j, j <= i;
    with a prefix (a prefix LM), j <= max(i, prefix - 1): the first `prefix` positions
    see each other, every later one sees them and its own past."""
    qpos = torch.arange(start, start + Tq, device=device)
    kpos = torch.arange(start + Tq, device=device)
    return kpos[None, :] <= qpos.clamp(min=prefix - 1)[:, None]


def explicit_attention(q, k, v, scale: float, mask, is_causal: bool, dropout: float,
                       record: list) -> torch.Tensor:
    """The same attention as SDPA, appending the weights (B, H, Tq, Tk) to `record`
    (and, when it has them, the number of keys each row may see to `record.n_keys`, and
    the logits before the softmax, scaled and then masked, to `record.stages`)."""
    if k.shape[1] != q.shape[1]:
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    scaled = scores = (q @ k.transpose(-2, -1)) * scale
    if is_causal:
        mask = causal_allowed(q.shape[2], 0, q.device)
    if mask is not None:
        scores = (scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool
                  else scores + mask)
    weights = scores.softmax(dim=-1)
    record.append(weights.detach())
    if hasattr(record, "n_keys"):
        record.n_keys.append(torch.isfinite(scores).sum(-1))
    if getattr(record, "stages", None) is not None:
        record.stages.append({"scaled": scaled.detach(), "masked": scores.detach()})
    if dropout:
        weights = F.dropout(weights, dropout)
    return weights @ v


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


def use_block_causal(q: torch.Tensor, k: torch.Tensor, dropout: float) -> int:
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
