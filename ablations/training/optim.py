"""The optimizer and learning-rate schedule of every run."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..config import TrainConfig


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Multiplier of cfg.lr at optimizer step s: linear warmup, then cosine to
    min_lr_ratio, the paper's inverse square root (Noam), or constant."""
    warm = max(cfg.warmup, 1)

    def f(s: int) -> float:
        s += 1
        if cfg.schedule == "noam":               # peaks at 1.0 when s == warmup
            return min(s / warm, math.sqrt(warm / s))
        if s <= cfg.warmup:
            return s / warm
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (s - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only. `fused` runs the whole update as one
    kernel per parameter (the for-each path issues about ten per parameter: at
    ablation-grid sizes the optimizer step would cost more than the model). Lightning's
    mixed-precision plugin refuses to clip gradients for a fused optimizer (it assumes
    the optimizer unscales them), so mixed precision keeps for-each."""
    decay = [p for p in net.parameters() if p.dim() >= 2]
    no_decay = [p for p in net.parameters() if p.dim() < 2]
    fused = cfg.precision == "32"
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused, foreach=not fused)


def make_schedule(opt: torch.optim.Optimizer,
                  cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-optimizer-step schedule of `lr_lambda`."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
