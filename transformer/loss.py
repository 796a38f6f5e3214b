"""The training loss, fused with the output projection.

`F.cross_entropy(head(h), target)` materialises the (N, V) logits, then autograd keeps
a log-softmax copy, fills an (N, V) zero gradient, scatters into it and runs a
log-softmax backward: four extra passes over the largest activation in a small
model. Cross-entropy's gradient with respect to the logits is simply
softmax - onehot, so `linear_cross_entropy` computes it during the forward pass,
chunk by chunk, and folds it straight into the two gradient matmuls. The logits
never exist in full and backward is two scalar multiplies (the idea behind
Liger-Kernel's and Apple's Cut Cross-Entropy fused losses).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Largest chunk of logits built at once: 2^22 floats (16 MiB in fp32). It bounds memory
# at large vocabularies and stays under glibc's largest mmap threshold (32 MiB), so the
# buffer comes from the heap instead of fresh, page-faulting pages on every call.
MAX_CHUNK_ELEMENTS = 2 ** 22


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(h_i @ W^T, t_i) / N with both gradients computed in forward."""

    @staticmethod
    def forward(ctx, h, weight, target):                   # h: (N, D), weight: (V, D)
        N, V = h.shape[0], weight.shape[0]
        chunk = max(1, MAX_CHUNK_ELEMENTS // V)
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros_like(weight)
        total = h.new_zeros(())
        # One logits buffer serves every chunk, and each step below runs in place in it:
        # a fresh buffer per intermediate is a fresh run of page faults on a CPU.
        buf = h.new_empty(min(chunk, N), V)
        for s in range(0, N, chunk):
            hs, ts = h[s:s + chunk], target[s:s + chunk, None]
            logits = torch.mm(hs, weight.t(), out=buf[:len(hs)])          # (c, V)
            logp = torch.log_softmax(logits, dim=-1, out=logits)          # row by row: safe
            total -= logp.gather(1, ts).sum()
            dlogits = logp.exp_()                                        # softmax
            dlogits.scatter_(1, ts, dlogits.gather(1, ts) - 1)           # softmax - onehot
            torch.mm(dlogits, weight, out=grad_h[s:s + chunk])           # (c, D)
            grad_w.addmm_(dlogits.t(), hs)                               # (V, D)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.n = N
        return total / N                      # N == 0 gives nan, as F.cross_entropy does

    @staticmethod
    def backward(ctx, grad_loss):
        grad_h, grad_w = ctx.saved_tensors
        scale = grad_loss / ctx.n
        return grad_h * scale, grad_w * scale, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                         ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy of the logits h @ weight^T against target over the positions
    whose target is not ignore_index; h (..., D), weight (V, D), target (...).

    Equals F.cross_entropy(h @ weight.T, target, ignore_index=ignore_index). Unscored
    positions are dropped before the projection (most of them on recall-style tasks).
    Half precision, autocast and no-grad calls take the plain path (autocast decides
    the matmul's precision there; the fused path is an fp32 training optimisation).
    """
    h, target = h.reshape(-1, h.shape[-1]), target.reshape(-1)
    if (h.dtype in (torch.float16, torch.bfloat16) or not torch.is_grad_enabled()
            or torch.is_autocast_enabled(h.device.type)):
        return F.cross_entropy((h @ weight.t()).float(), target, ignore_index=ignore_index)
    scored = target != ignore_index
    if not bool(scored.all()):                 # a host sync; cheap next to the matmuls
        h, target = h[scored], target[scored]
    return _LinearCrossEntropy.apply(h, weight, target)
