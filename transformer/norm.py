"""Normalisation layers and the residual + norm placement around each sublayer.

A `norm` variant is any module built as Cls(cfg) that maps (B, T, D) -> (B, T, D);
placements create as many as they need through `make_norm`, and the stack may add a
final one (`final_norm`). A placement is the Annotated Transformer's
SublayerConnection: residual and norm in one place, which is exactly the unit the
norm-placement ablation swaps.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .config import ModelConfig
from .registry import NORM, PLACEMENT

Sublayer = Callable[[torch.Tensor], torch.Tensor]          # (B, T, D) -> (B, T, D)


@NORM.register("layernorm")
class LayerNorm(nn.LayerNorm):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg.d_model, eps=1e-5, bias=cfg.bias)


@NORM.register("rmsnorm")
class RMSNorm(nn.RMSNorm):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg.d_model, eps=1e-6)


@NORM.register("none")
class NoNorm(nn.Identity):
    def __init__(self, cfg: ModelConfig):
        super().__init__()


def make_norm(cfg: ModelConfig) -> nn.Module:
    return NORM.get(cfg.norm)(cfg)


class Placement(nn.Module):
    """Base of the `norm_placement` variants: residual connection and norm around one
    sublayer (attention, cross-attention or FFN); one instance per sublayer.

    Protocol: built as Cls(cfg); forward(x, sublayer) -> the new residual stream, where
    x is (B, T, D) and `sublayer` maps (B, T, D) -> (B, T, D). Apply `self.dropout` to
    the sublayer's output. Class attribute `final_norm`: True when the stack must end
    with one more norm (pre-norm leaves the residual stream unnormalised). Optional
    class attributes: `ignores` and `check_config(cfg)` (see registry.py).
    """

    final_norm = False            # does the stack need a norm after its last block?

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)


@PLACEMENT.register("post")
class PostNorm(Placement):
    """Vaswani et al. 2017: LN(x + f(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.norm = make_norm(cfg)

    def forward(self, x: torch.Tensor, sublayer: Sublayer) -> torch.Tensor:
        return self.norm(x + self.dropout(sublayer(x)))


@PLACEMENT.register("pre")
class PreNorm(Placement):
    """x + f(LN(x)); the stack ends with one more LN (Xiong et al. 2020)."""

    final_norm = True

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.norm = make_norm(cfg)

    def forward(self, x: torch.Tensor, sublayer: Sublayer) -> torch.Tensor:
        return x + self.dropout(sublayer(self.norm(x)))


@PLACEMENT.register("sandwich")
class SandwichNorm(Placement):
    """x + LN(f(LN(x))) (Ding et al. 2021, CogView)."""

    final_norm = True

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.norm_in, self.norm_out = make_norm(cfg), make_norm(cfg)

    def forward(self, x: torch.Tensor, sublayer: Sublayer) -> torch.Tensor:
        return x + self.dropout(self.norm_out(sublayer(self.norm_in(x))))


@PLACEMENT.register("none")
class NoResidual(Placement):
    """f(x): neither residual nor norm, the residual-connection ablation (it removes
    both at once; `norm_only` removes the residual alone)."""

    ignores = ("norm",)

    def forward(self, x: torch.Tensor, sublayer: Sublayer) -> torch.Tensor:
        return self.dropout(sublayer(x))


@PLACEMENT.register("norm_only")
class NormNoResidual(Placement):
    """LN(f(x)): the norm without the residual, i.e. Post-LN with its residual add
    removed. It isolates the residual connection: against `post` only the "x +" is
    gone, and every sublayer still reads a normalised input, so a failure is the missing
    shortcut, not an unnormalised stream (which is what `none` confounds it with). Without
    a residual, "pre" and "post" order are the same chain (..., f, LN, f, LN, ...) up to
    one norm at either end, so this is also Pre-LN without its residual. The residual
    without the norm is `pre` (or any placement) with `norm: none`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.norm = make_norm(cfg)

    def forward(self, x: torch.Tensor, sublayer: Sublayer) -> torch.Tensor:
        return self.norm(self.dropout(sublayer(x)))


def final_norm(cfg: ModelConfig) -> nn.Module:
    return make_norm(cfg) if PLACEMENT.get(cfg.norm_placement).final_norm else nn.Identity()
