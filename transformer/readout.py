"""What the output head reads: the `readout` variants.

`token` (the default) leaves every position its own final state: a language model
predicts each next token from it, and a classifier reads its label at one position (a
[CLS] token). `mean` gives every position the mean of the sequence's final states, so a
classifier reads the whole sequence with no privileged position: through a [CLS] token at
position 0 an encoding that sees only distances still learns where each token stands
(|0 - j| is j), while under a mean readout a bidirectional model whose positions enter
only as distances cannot tell a sequence from its reverse.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .registry import READOUT


class Readout(nn.Module):
    """Base of the `readout` variants. Protocol: built as Cls(cfg); forward(h) maps the
    final hidden states (B, T, D) to what the head reads, (B, T, D)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()


@READOUT.register("token")
class TokenReadout(Readout):
    """Each position reads its own state (the identity)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h


@READOUT.register("mean")
class MeanReadout(Readout):
    """Each position reads the mean over all positions: one prediction per sequence
    (a task scores it at one position). Incremental decoding is refused: a prefix's
    mean is not the sequence's."""

    generates = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:       # (B, T, D) -> (B, T, D)
        return h.mean(1, keepdim=True).expand_as(h)
