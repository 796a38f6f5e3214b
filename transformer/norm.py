"""Normalisation layers and the residual + norm placement around each sublayer.

A placement is the Annotated Transformer's SublayerConnection: residual and norm in
one place, which is exactly the unit the norm-placement ablation swaps.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import NORM, PLACEMENT


@NORM.register("layernorm")
class LayerNorm(nn.LayerNorm):
    def __init__(self, cfg):
        super().__init__(cfg.d_model, eps=1e-5, bias=cfg.bias)


@NORM.register("rmsnorm")
class RMSNorm(nn.RMSNorm):
    def __init__(self, cfg):
        super().__init__(cfg.d_model, eps=1e-6)


@NORM.register("none")
class NoNorm(nn.Identity):
    def __init__(self, cfg):
        super().__init__()


def make_norm(cfg) -> nn.Module:
    return NORM.get(cfg.norm)(cfg)


class Placement(nn.Module):
    """forward(x, sublayer) -> new residual stream; `sublayer` maps (B,T,D) -> (B,T,D)."""

    final_norm = False            # does the stack need a norm after its last block?

    def __init__(self, cfg):
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)


@PLACEMENT.register("post")
class PostNorm(Placement):
    """Vaswani et al. 2017: LN(x + f(x))."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.norm = make_norm(cfg)

    def forward(self, x, sublayer):
        return self.norm(x + self.dropout(sublayer(x)))


@PLACEMENT.register("pre")
class PreNorm(Placement):
    """x + f(LN(x)); the stack ends with one more LN (Xiong et al. 2020)."""

    final_norm = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.norm = make_norm(cfg)

    def forward(self, x, sublayer):
        return x + self.dropout(sublayer(self.norm(x)))


@PLACEMENT.register("sandwich")
class SandwichNorm(Placement):
    """x + LN(f(LN(x))) (Ding et al. 2021, CogView)."""

    final_norm = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.norm_in, self.norm_out = make_norm(cfg), make_norm(cfg)

    def forward(self, x, sublayer):
        return x + self.dropout(self.norm_out(sublayer(self.norm_in(x))))


@PLACEMENT.register("none")
class NoResidual(Placement):
    """f(x): neither residual nor norm, the residual-connection ablation."""

    ignores = ("norm",)

    def forward(self, x, sublayer):
        return self.dropout(sublayer(x))


def final_norm(cfg) -> nn.Module:
    return make_norm(cfg) if PLACEMENT.get(cfg.norm_placement).final_norm else nn.Identity()
