"""RNN / LSTM / GRU baselines behind the Transformer's contract (torch's fused kernels:
cuDNN on GPU, MKL/oneDNN on CPU). Hidden size = d_model, depth = n_layers."""
from __future__ import annotations

from torch import nn

from .model import LanguageModel
from .registry import ARCH


class RecurrentLM(LanguageModel):
    cell: type = nn.LSTM
    # a recurrence has no attention, positions or norms: these fields change nothing
    ignores = ("n_heads", "n_kv_heads", "d_ff", "pos", "attn_scale", "norm",
               "norm_placement", "ffn", "causal", "cross_attention", "max_len")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.rnn = self.cell(cfg.d_model, cfg.d_model, num_layers=cfg.n_layers, bias=cfg.bias,
                             batch_first=True, dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)

    def forward(self, tokens, state=None):                  # (B, T) -> (B, T, V)
        return self.head(self.hidden(tokens, state))

    def hidden(self, tokens, state=None):                   # (B, T) -> (B, T, D)
        return self.rnn(self.embed(tokens), state)[0]

    def init_state(self, prompt, max_len, src=None):
        return {"hidden": None}

    def decode(self, tokens, state):
        out, state["hidden"] = self.rnn(self.embed(tokens), state["hidden"])
        return self.head(out)

    def full_logits(self, tokens, src=None):
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
