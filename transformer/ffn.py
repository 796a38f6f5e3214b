"""Position-wise feed-forward networks. Gated variants (Shazeer 2020) use a hidden
width of 2/3 * d_ff so their parameter count matches the ungated FFN."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .registry import FFN


class FeedForward(nn.Module):
    """Base of the `ffn` variants: the position-wise sublayer of every block.

    Protocol: built as Cls(cfg); forward(x) maps (B, T, D) -> (B, T, D), each position
    on its own. Width comes from cfg.d_ff; a variant that uses more matrices keeps the
    parameter count of the 2-matrix MLP (see gated_width). Optional class attributes:
    `ignores` and `check_config(cfg)` (see registry.py).
    """


class MLP(FeedForward):
    """down(act(up(x))): the paper's FFN, d_model -> d_ff -> d_model."""

    act = staticmethod(F.relu)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # (B, T, D) -> (B, T, D)
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


class GLU(FeedForward):
    """down(value * act(gate)) with value, gate = up(x) (Shazeer 2020)."""

    act = staticmethod(F.silu)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.hidden = gated_width(cfg.d_ff)
        self.up = nn.Linear(cfg.d_model, 2 * self.hidden, bias=cfg.bias)   # value and gate, fused
        self.down = nn.Linear(self.hidden, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.up(x).chunk(2, dim=-1)
        return self.down(self.dropout(value * self.act(gate)))


@FFN.register("swiglu")
class SwiGLU(GLU):
    act = staticmethod(F.silu)


@FFN.register("geglu")
class GeGLU(GLU):
    act = staticmethod(F.gelu)


@FFN.register("none")
class NoFFN(FeedForward):
    """The FFN-removed control: the sublayer contributes nothing (attention-only model)."""

    ignores = ("d_ff",)

    def __init__(self, cfg: ModelConfig):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
