"""Looking inside a model without slowing the fast path: attention weights on demand."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from .attention import Attention


class AttentionMaps(list):
    """Attention weights (B, H, Tq, Tk), one entry per attention call, plus `n_keys`:
    for each entry, how many keys each query row was allowed to see (B or 1, H or 1, Tq)
    -- the denominator of 'fraction of uniform entropy', which cannot be read off
    weights that underflowed to zero. With `stages`, also the logits each softmax
    read: {"scaled": q k^T * scale, "masked": after the mask and positional bias}."""

    def __init__(self, stages: bool = False):
        super().__init__()
        self.n_keys: list[torch.Tensor] = []
        # off by default: two more (B, H, Tq, Tk) tensors a call that only explainers read
        self.stages: list[dict[str, torch.Tensor]] | None = [] if stages else None


@contextlib.contextmanager
def record_attention(model: nn.Module, stages: bool = False) -> Iterator[AttentionMaps]:
    """Within the block, every attention layer runs its explicit path and appends its
    weights (B, H, Tq, Tk) to the yielded list, in module order (for encoder_decoder:
    encoder self-attention, then per decoder block self- and cross-attention);
    `stages=True` also keeps the pre-softmax logits in `maps.stages`."""
    layers = [m for m in model.modules() if isinstance(m, Attention)]
    maps = AttentionMaps(stages)
    for layer in layers:
        layer.recorded = maps
    try:
        yield maps
    finally:
        for layer in layers:
            layer.recorded = None


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of attention rows (B, H, Tq, Tk) -> (H,)."""
    return row_entropy(weights).mean(dim=(0, 2))


def row_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each attention row: (B, H, Tq, Tk) -> (B, H, Tq)."""
    w = weights.float()
    return -(w * w.clamp_min(1e-30).log()).sum(-1)


def entropy_fraction(weights: torch.Tensor, n_keys: torch.Tensor) -> torch.Tensor:
    """Row entropy / log(keys the row may see): 1 = uniform, 0 = one-hot (saturated).
    Rows that see a single key carry no information and count as 1."""
    n = n_keys.float().expand(weights.shape[:-1])
    return torch.where(n > 1, row_entropy(weights) / n.clamp_min(2).log(), torch.ones_like(n))
