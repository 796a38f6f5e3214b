"""Position-wise feed-forward networks. Gated variants (Shazeer 2020) use a hidden
width of 2/3 * d_ff so their parameter count matches the ungated FFN."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import FFN


class MLP(nn.Module):
    act = staticmethod(F.relu)

    def __init__(self, cfg):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):                                     # (B, T, D) -> (B, T, D)
        return self.down(self.dropout(self.act(self.up(x))))


@FFN.register("relu")
class ReluMLP(MLP):
    act = staticmethod(F.relu)


@FFN.register("gelu")
class GeluMLP(MLP):
    act = staticmethod(F.gelu)


def gated_width(d_ff: int) -> int:
    # 3 matrices of d x h  ~=  2 matrices of d x d_ff  ->  h = 2/3 d_ff
    return max(1, round(2 * d_ff / 3))


class GLU(nn.Module):
    act = staticmethod(F.silu)

    def __init__(self, cfg):
        super().__init__()
        self.hidden = gated_width(cfg.d_ff)
        self.up = nn.Linear(cfg.d_model, 2 * self.hidden, bias=cfg.bias)   # value and gate, fused
        self.down = nn.Linear(self.hidden, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        value, gate = self.up(x).chunk(2, dim=-1)
        return self.down(self.dropout(value * self.act(gate)))


@FFN.register("swiglu")
class SwiGLU(GLU):
    act = staticmethod(F.silu)


@FFN.register("geglu")
class GeGLU(GLU):
    act = staticmethod(F.gelu)


@FFN.register("none")
class NoFFN(nn.Module):
    """The FFN-removed control: the sublayer contributes nothing (attention-only model)."""

    ignores = ("d_ff",)

    def __init__(self, cfg):
        super().__init__()

    def forward(self, x):
        return torch.zeros_like(x)
