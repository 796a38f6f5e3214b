"""RNN / LSTM / GRU baselines behind the Transformer's contract (torch's fused kernels:
cuDNN on GPU, MKL/oneDNN on CPU). Hidden size = d_model, depth = n_layers."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .model import SequenceModel
from .registry import ARCH

if TYPE_CHECKING:
    from .config import ModelConfig


class RecurrentLM(SequenceModel):
    """Embedding -> torch's multi-layer recurrence (`cell`) -> head."""

    cell: type[nn.RNNBase] = nn.LSTM
    recurrent = True
    # a recurrence has no attention, positions or norms: these fields change nothing
    ignores = ("n_heads", "n_kv_heads", "d_head", "d_ff", "pos", "attn_scale", "norm",
               "norm_placement", "ffn", "causal", "cross_attention", "max_len")

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.rnn = self.cell(cfg.d_model, cfg.d_model, num_layers=cfg.n_layers, bias=cfg.bias,
                             batch_first=True, dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)

    def forward(self, tokens: torch.Tensor, state: Any = None) -> torch.Tensor:
        """tokens (B, T) -> logits (B, T, V); state: the cell's hidden state, None = zeros."""
        return self.head(self.hidden(tokens, state))

    def hidden(self, tokens: torch.Tensor, state: Any = None) -> torch.Tensor:   # -> (B, T, D)
        return self.readout(self.rnn(self.embed(tokens), state)[0])

    def blocks(self) -> list[nn.Module]:
        return [self.rnn]          # one fused module for all layers: one gradient norm

    def init_state(self, prompt: torch.Tensor, max_len: int,
                   src: torch.Tensor | None = None) -> dict[str, Any]:
        return {"hidden": None}

    def decode(self, tokens: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        out, state["hidden"] = self.rnn(self.embed(tokens), state["hidden"])
        return self.head(out)

    def full_logits(self, tokens: torch.Tensor, src: torch.Tensor | None = None) -> torch.Tensor:
        return self(tokens)


@ARCH.register("rnn")
class RNN(RecurrentLM):
    cell = nn.RNN


@ARCH.register("lstm")
class LSTM(RecurrentLM):
    cell = nn.LSTM


@ARCH.register("gru")
class GRU(RecurrentLM):
    cell = nn.GRU
